import { runtimeEnv } from '../../config.js';
import { openPullq, type GlobalFlags } from '../command-context.js';
import { formatDuration } from '../progress.js';

/**
 * `pullq login [--client NAME]`: OAuth2 authorization code with PKCE for one client. Prints the URL to
 * open, waits for the redirect on 127.0.0.1:<redirectPort>/callback, stores the refresh token for the
 * fleet and prints `logged in: <client>` (exit 0). A refused or mismatched answer is one line on stderr
 * (exit 1); no answer within 5 minutes (PULLQ_LOGIN_TIMEOUT_MS, for tests) exits 2.
 */
export async function loginCommand(flags: GlobalFlags & { client?: string }): Promise<number> {
  const { pullq } = openPullq(flags, { connection: 'brief', defaultLogLevel: 'warn', logFormat: 'human' });
  try {
    const r = await pullq.login({
      client: flags.client,
      timeoutMs: runtimeEnv().loginTimeoutMs,
      onUrl: (url, info) =>
        process.stdout.write(`to log in client ${info.client}, open this URL in a browser:\n\n  ${url}\n\nwaiting for the redirect on ${info.redirectUri} (up to ${formatDuration(info.timeoutMs)})\n`),
    });
    process.stdout.write(`logged in: ${r.client}\n`);
    return 0;
  } finally {
    await pullq.close();
  }
}
