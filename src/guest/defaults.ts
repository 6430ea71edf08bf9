// The guest proxy's defaults, apart from the proxy itself so that the CLI can show them in --help without
// loading the proxy and everything it imports (the guest starts noticeably faster under emulation).

/** The TCP port spice-webdavd is run with (its unit and MSI pass `-p 9843`) and where guests look for it. */
export const DEFAULT_GUEST_PORT = 9843;
/** Loopback on both families: Windows resolves `localhost` to ::1 first (protocol.md §a.9 item 7). */
export const DEFAULT_GUEST_HOSTS: readonly string[] = ['127.0.0.1', '::1'];
/** Default `waitForHost`: long enough to ride out a viewer reconnecting, short of WebClient's own timeouts. */
export const DEFAULT_WAIT_FOR_HOST = 10_000;
/** Default `maxWaitingConnections`. */
export const DEFAULT_MAX_WAITING_CONNECTIONS = 64;
