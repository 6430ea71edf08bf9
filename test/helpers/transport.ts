import type { Transport, TransportState } from '../../src/host/index.js';

/** Resolves with the first state (already current, or emitted later) that matches; fails after `ms`. */
export function waitState(tr: Transport, match: (s: TransportState) => boolean, what: string, ms = 5000): Promise<TransportState> {
  if (match(tr.state)) return Promise.resolve(tr.state);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      tr.off('state', on);
      reject(new Error(`timed out waiting for ${what}; last state ${JSON.stringify({ ...tr.state, error: tr.state.error?.message })}`));
    }, ms);
    const on = (s: TransportState) => {
      if (!match(s)) return;
      clearTimeout(timer);
      tr.off('state', on);
      resolve(s);
    };
    tr.on('state', on);
  });
}
