import test from 'node:test';
import { sessionFuzzOnce } from './session-fuzz-case.js';

test('fuzz: 300 random frame streams into host and guest sessions: no crash, bounds hold, every session closes', async (t) => {
  const unexpected: unknown[] = [];
  const record = (err: unknown): void => void unexpected.push(err);
  process.on('uncaughtException', record);
  t.after(() => process.off('uncaughtException', record));
  for (let seed = 1; seed <= 300; seed++) {
    await sessionFuzzOnce(seed);
    if (unexpected.length > 0) throw new Error(`seed ${seed}: uncaught ${String(unexpected[0])}`);
  }
});
