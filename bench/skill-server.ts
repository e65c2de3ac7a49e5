/**
 * The skill server of bench/skills.ts, run as its child so client and server do not share an
 * event loop: the onnx skill hosting `argv[2]`'s models (default: mlp) on a free port, which it
 * reports to the parent over IPC. Stops when the parent goes away.
 */
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createOnnxBackend } from '../src/skills/backends/onnx/index.js';
import { createSkillServer } from '../src/skills/server.js';

const [repository, models = 'mlp'] = process.argv.slice(2);
if (!repository || !process.send)
  throw new Error('usage: (forked by bench/skills.ts) skill-server.ts <repository> [models]');

const logger = pino({ level: 'warn' });
const server = createSkillServer({
  name: 'onnx',
  backend: createOnnxBackend({ repository, only: models.split(','), idleUnloadMs: 0, intraOpThreads: 0, logger }),
  logger,
  registry: new Registry(),
});
const port = await server.start('127.0.0.1', 0);
process.send({ port });
process.once('disconnect', () => {
  void server.stop(1_000).then(() => process.exit(0));
});
