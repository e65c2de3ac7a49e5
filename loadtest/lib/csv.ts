import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** docs/loadtest/: the CSVs a load test writes and the plots drawn from them. */
export const docsDir = fileURLToPath(new URL('../../docs/loadtest/', import.meta.url));

export type Row = Record<string, number | string>;

/** Numbers with 3 decimals at most; NaN as empty. Values never hold commas. */
function cell(v: number | string): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return '';
  return String(Math.round(v * 1000) / 1000);
}

export function writeCsv(path: string, rows: Row[]): void {
  const columns = Object.keys(rows[0] ?? {});
  const lines = [columns.join(','), ...rows.map((r) => columns.map((c) => cell(r[c] ?? NaN)).join(','))];
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${lines.join('\n')}\n`);
}

/** Rows of a CSV written by writeCsv: numeric cells as numbers, empty ones as NaN. */
export function readCsv(path: string): Record<string, number | string>[] {
  const [head, ...lines] = readFileSync(path, 'utf8').trim().split('\n');
  const columns = (head ?? '').split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    const row: Record<string, number | string> = {};
    columns.forEach((c, i) => {
      const raw = cells[i] ?? '';
      row[c] = raw === '' ? NaN : Number.isNaN(Number(raw)) ? raw : Number(raw);
    });
    return row;
  });
}
