/**
 * Counters of one `MuxSession`, updated in place as it runs (read them any time; they only grow). Byte counts
 * are payload bytes, without the 10-byte frame headers.
 */
export interface MuxStats {
  /** Payload bytes received in data frames, including frames that were dropped. */
  bytesIn: number;
  /** Payload bytes handed to the transport. */
  bytesOut: number;
  /** Frames received (data and size-0). */
  framesIn: number;
  /** Frames handed to the transport (data and size-0). */
  framesOut: number;
  /** Received data frames that had no channel to go to (unknown id in the guest role, destroyed channel, ...). */
  framesDropped: number;
  /** Channels created (host role: by the guest's first data on an id; guest role: by `open()`). */
  channelsOpened: number;
  /** Host role: new connections refused because `maxChannels` were open (their frames are dropped). */
  channelsRefused: number;
  /** Channels destroyed with `MUX_ERR_CHANNEL_OVERFLOW`. */
  overflows: number;
  /** Channels destroyed with `MUX_ERR_CHANNEL_STALLED` (over their bound, reader idle for `stallTimeout`). */
  stalls: number;
  /** Times the transport was paused because unread data reached a bound. */
  transportPauses: number;
  /** Highest total of unread channel bytes seen (the quantity `maxSessionBuffer` bounds). */
  peakBufferedBytes: number;
}

/** A zeroed {@link MuxStats}. */
export function createMuxStats(): MuxStats {
  return {
    bytesIn: 0,
    bytesOut: 0,
    framesIn: 0,
    framesOut: 0,
    framesDropped: 0,
    channelsOpened: 0,
    channelsRefused: 0,
    overflows: 0,
    stalls: 0,
    transportPauses: 0,
    peakBufferedBytes: 0,
  };
}
