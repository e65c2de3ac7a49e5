import assert from 'node:assert/strict';
import { createServer, type Server, type Socket, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SkillClient } from '../../src/skills/client.js';
import { startTestSkill, type TestSkill } from '../helpers/skill.js';

/** A TCP relay in front of the skill that counts the connections clients open through it. */
async function countingRelay(target: number): Promise<{ port: number; connections: () => number; close: () => void }> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    count++;
    const outbound = connect(target, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => count,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('SkillClient channels', () => {
  let skill: TestSkill;
  let port: number;

  before(async () => {
    skill = await startTestSkill();
    port = skill.port;
  });
  after(() => skill?.stop());

  const calls = (client: SkillClient, n: number) =>
    Promise.all(
      Array.from({ length: n }, (_, i) =>
        client.infer(
          { id: String(i), text: 'ok', parameters: { task: 'tokens', maxTokens: 0, modelVersion: '' } },
          5_000,
        ),
      ),
    );

  for (const channels of [1, 4]) {
    it(`${channels} channel(s) open ${channels} connection(s), and calls use them all`, async () => {
      const relay = await countingRelay(port);
      // Two clients to the same address with the same options: without a subchannel pool per
      // channel, grpc-js would let them share connections.
      const clients = [0, 1].map(() => new SkillClient('nlp', `127.0.0.1:${relay.port}`, { channels }));
      try {
        for (const c of clients) assert.equal(c.channelCount, channels);
        const answers = await Promise.all(clients.map((c) => calls(c, 32)));
        assert.equal(answers.flat().length, 64);
        assert.equal(relay.connections(), channels * 2);
      } finally {
        for (const c of clients) c.close();
        relay.close();
      }
    });
  }
});
