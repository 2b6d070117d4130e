/** `lifeboat explorer`: the web explorer's sign-in link, a credential. */
import type { Command } from 'commander';
import { type CliContext, type CommonOptions, runAction, withCommonOptions } from './common.ts';
import { callerToken, parseServiceUrls } from './connection.ts';

/**
 * The sign-in link: the token rides in the URL's fragment, which a browser never sends (so it is
 * in no server's or proxy's log); the explorer page moves it to sessionStorage and clears it.
 */
export function explorerLink(serviceUrl: string, token: string): string {
  return `${serviceUrl.replace(/\/+$/, '')}/explorer/#token=${encodeURIComponent(token)}`;
}

export function registerExplorer(program: Command, ctx: CliContext): void {
  withCommonOptions(program.command('explorer'), ctx)
    .description('print the web explorer\'s sign-in link (it carries the token: treat it as a password)')
    .action((o: CommonOptions) => runAction(ctx, o, async (_lb, out) => {
      // Of several instances, the first: any of them serves the same explorer.
      const link = explorerLink(parseServiceUrls(o.serviceUrl, '--service-url')[0] as string, callerToken(o));
      if (out.json) out.data({ Url: link });
      else out.term.stdout.write(`${link}\n`);
      out.note('warning: this link is a credential: whoever has it acts with your token. Do not paste it into chats or tickets; open it in your own browser.');
    }));
}
