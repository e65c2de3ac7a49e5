import { http } from './cluster.js';

/** Sum of a Prometheus counter over every sample (all labels) on each of `urls`. */
export async function sumMetric(urls: string[], name: string, labelFilter = ''): Promise<number> {
  let total = 0;
  for (const url of urls) {
    const { text } = await http(url);
    for (const line of text.split('\n')) {
      if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
        if (labelFilter && !line.includes(labelFilter)) continue;
        total += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
  }
  return total;
}
