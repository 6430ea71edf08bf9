import { Option, type Command } from '../commander.js';
import type { FileAuthenticator } from '../../../dav/index.js';
import type { CommandModule } from '../program.js';
import { globalsOf, loggerFor, runUntilSignal, davReady, davStatusDisplay } from '../runtime.js';
import { portOption, readOptionFile, shareDir } from '../options.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { isLoopbackHost } from '../../loopback.js';

interface ServeOptions {
  port: number;
  host: string;
  readOnly?: boolean;
  followSymlinks: 'never' | 'inside';
  tlsCert?: string;
  tlsKey?: string;
  allowUnauthenticated?: boolean;
  stateDir?: string;
  htpasswd?: string;
  htdigest?: string;
  realm: string;
  /** false with --no-login-throttle. */
  loginThrottle: boolean;
}

const EXAMPLES = `
Examples:
  spicedav serve ~/Public                       http://127.0.0.1:8080/ for this machine only
  spicedav serve ~/Public --read-only -p 9000   nothing can be changed through the server
  spicedav serve /srv/share --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem --htdigest users.htdigest
                                                 on the network: HTTPS with Digest users (htdigest -c users.htdigest spicedav me)

Mount it: gio mount dav://127.0.0.1:8080/ · mount -t davfs http://127.0.0.1:8080/ /mnt · cadaver http://127.0.0.1:8080/`;

async function serve(dir: string, o: ServeOptions, command: Command): Promise<void> {
  const { BasicAuth, DavServer, DigestAuth, followUserFile } = await import('../../../dav/index.js');
  const globals = globalsOf(command);
  const log = loggerFor(globals);
  const root = shareDir(dir);
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
    throw new CliError('CLI_ERR_TLS_PAIR', 'TLS needs both --tls-cert and --tls-key', ExitCode.USAGE);
  }
  const tls = o.tlsCert && o.tlsKey ? { cert: readOptionFile('--tls-cert', o.tlsCert), key: readOptionFile('--tls-key', o.tlsKey) } : undefined;
  if (o.htpasswd && o.htdigest) throw new CliError('CLI_ERR_AUTH_PAIR', 'give --htpasswd (Basic) or --htdigest (Digest), not both', ExitCode.USAGE);
  let auth: FileAuthenticator | undefined;
  if (o.htdigest) auth = await DigestAuth.fromFile(o.htdigest, o.realm);
  else if (o.htpasswd) auth = await BasicAuth.fromFile(o.htpasswd, o.realm);
  // Basic sends the password in clear on every request: fine on loopback or inside TLS, not elsewhere.
  if (o.htpasswd && !tls && !isLoopbackHost(o.host)) {
    log.warn({ host: o.host }, 'Basic authentication without TLS sends passwords in clear text; add --tls-cert/--tls-key or use --htdigest');
  }
  const dav = new DavServer({ root, readOnly: o.readOnly, followSymlinks: o.followSymlinks, stateDir: o.stateDir, ...(o.loginThrottle ? {} : { loginThrottle: false }), log: log.child({ component: 'dav' }) });
  await davReady(dav);
  let address;
  try {
    address = await dav.listen({ port: o.port, host: o.host, tls, auth, allowUnauthenticatedRemote: o.allowUnauthenticated });
  } catch (err) {
    await dav.destroy();
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new CliError('CLI_ERR_PORT_IN_USE', `port ${o.port} on ${o.host} is in use; pick another with --port`, ExitCode.ENVIRONMENT, { cause: err });
    if (e.code === 'EACCES' && o.port < 1024) {
      throw new CliError('CLI_ERR_PORT_PRIVILEGED', `port ${o.port} is below 1024, which only root (or CAP_NET_BIND_SERVICE) may listen on; pick another with --port`, ExitCode.ENVIRONMENT, { cause: err });
    }
    if (e.code === 'DAV_ERR_INSECURE_LISTEN') {
      throw new CliError('CLI_ERR_INSECURE_LISTEN', `refusing to serve ${o.host} without authentication: anyone on the network could read and write ${root}. Bind 127.0.0.1, or pass --allow-unauthenticated if that is really what you want`, ExitCode.USAGE, { cause: err });
    }
    throw err;
  }
  // Users added, changed or removed in the file apply without a restart.
  const users = auth ? await followUserFile(auth, log.child({ component: 'auth' })) : undefined;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${tls ? 'https' : 'http'}://${host}:${address.port}/`;
  const display = davStatusDisplay(globals, dav, (tracker) => {
    const { bytesIn, bytesOut } = tracker.totals();
    return { title: `serving ${root}${o.readOnly ? ' (read-only)' : ''} at ${url}`, state: 'listening', bytesIn, bytesOut, transfers: tracker.views() };
  });
  display.event(`serving ${root}${o.readOnly ? ' read-only' : ''} at ${url}  (Ctrl-C stops)`);
  display.start();
  await runUntilSignal(async () => {
    display.stop();
    await users?.close();
    await dav.close();
  }, log);
}

export const serveCommand: CommandModule = {
  register(program) {
    program
      .command('serve')
      .summary('serve a folder over WebDAV on a TCP port (no VM needed)')
      .description('Serve DIR with the same RFC 4918 WebDAV server `share` uses, on a TCP port: standalone sharing or testing without virtualization.')
      .argument('<dir>', 'the folder to share')
      .addOption(new Option('-p, --port <port>', 'TCP port (0 = any free port)').argParser(portOption(true)).default(8080))
      .option('-H, --host <address>', 'address to listen on; beyond loopback needs --allow-unauthenticated', '127.0.0.1')
      .option('-r, --read-only', 'refuse every change (PUT, DELETE, MKCOL, MOVE, COPY, PROPPATCH, LOCK)')
      .addOption(new Option('--follow-symlinks <policy>', 'never: refuse paths through symlinks; inside: follow links that stay in the folder').choices(['never', 'inside']).default('never'))
      .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (with --tls-key)')
      .option('--tls-key <file>', 'the PEM private key of --tls-cert')
      .option('--htpasswd <file>', 'require Basic authentication with the users of this htpasswd file (htpasswd -B, -5, -2, -m or -s); changes to it apply at once')
      .option('--htdigest <file>', 'require Digest authentication with the users of this htdigest file; changes to it apply at once')
      .option('--realm <realm>', 'the authentication realm (for --htdigest: the realm of its entries)', 'spicedav')
      .option('--no-login-throttle', 'do not make an address wait after 10 failed logins (behind a reverse proxy, where every client has its address)')
      .option('--allow-unauthenticated', 'allow listening beyond loopback without authentication')
      .option('--state-dir <dir>', 'where dead properties and WebDAV locks are kept (default $XDG_STATE_HOME/spicedav)')
      .addHelpText('after', EXAMPLES)
      .action(serve);
  },
};
