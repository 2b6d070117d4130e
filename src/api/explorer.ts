/**
 * The web explorer's static files, served at `/explorer` without a credential (they hold no data:
 * every call the page makes carries the signed-in token): the HTML shell, the script (src/explorer
 * bundled by esbuild, once per process, in memory) and the style sheet. Strict headers: a CSP that
 * allows only this origin's script, style and API calls, no referrer, no caching, no framing.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { fabricError } from '../wire/errors.ts';
import { ROUTES } from '../wire/routes.ts';

const ENTRY = fileURLToPath(new URL('../explorer/main.ts', import.meta.url));
const STYLE = fileURLToPath(new URL('../explorer/style.css', import.meta.url));

export const EXPLORER_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Absolute asset URLs: '/explorer' and '/explorer/' both reach the page. The empty icon keeps the browser from asking for /favicon.ico. */
const SHELL = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lifeboat explorer</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/explorer/style.css">
<script type="module" src="/explorer/app.js"></script>
</head>
<body>
<div id="app"><noscript>The Lifeboat explorer needs JavaScript.</noscript></div>
</body>
</html>
`;

export interface ExplorerAssets {
  readonly script: string;
  readonly style: string;
}

/**
 * Bundles the explorer: preact, htm, the typed client and the pages, for the browser. Warnings are
 * failures too (test/explorer/assets.test.ts builds it, so a broken explorer fails the tests, not
 * a user's first visit).
 */
export async function buildExplorerAssets(): Promise<ExplorerAssets> {
  const [bundle, style] = await Promise.all([
    build({ entryPoints: [ENTRY], bundle: true, format: 'esm', write: false, minify: true, target: 'chrome110', platform: 'browser', logLevel: 'silent', legalComments: 'none' }),
    readFile(STYLE, 'utf8'),
  ]);
  const problems = [...bundle.errors, ...bundle.warnings].map((m) => `${m.location ? `${m.location.file}:${m.location.line}: ` : ''}${m.text}`);
  const out = bundle.outputFiles[0];
  if (problems.length > 0 || !out) throw new Error(`The explorer could not be bundled: ${problems.join('; ') || 'no output'}`);
  return { script: out.text, style };
}

// One build per process, on the first request: the files do not change while it runs, and a
// service whose explorer is never opened never pays for it.
let assets: Promise<ExplorerAssets> | undefined;
function explorerAssets(): Promise<ExplorerAssets> {
  assets ??= buildExplorerAssets();
  return assets;
}

function send(reply: FastifyReply, contentType: string, body: string): FastifyReply {
  return reply
    .header('Content-Type', contentType)
    .header('Content-Security-Policy', EXPLORER_CSP)
    .header('Referrer-Policy', 'no-referrer')
    .header('Cache-Control', 'no-store')
    .header('X-Frame-Options', 'DENY')
    .header('Cross-Origin-Opener-Policy', 'same-origin')
    .send(body);
}

export function registerExplorer(app: FastifyInstance): void {
  const config = { access: 'public' } as const;
  app.get(ROUTES.explorer, { config }, async (_req, reply) => send(reply, 'text/html; charset=utf-8', SHELL));
  app.get(ROUTES.explorerFiles, { config }, async (req, reply) => {
    const file = (req.params as Record<string, string>)['*'] ?? '';
    if (file === '' || file === 'index.html') return send(reply, 'text/html; charset=utf-8', SHELL);
    if (file === 'app.js') return send(reply, 'text/javascript; charset=utf-8', (await explorerAssets()).script);
    if (file === 'style.css') return send(reply, 'text/css; charset=utf-8', (await explorerAssets()).style);
    // The path is not echoed: a public answer tells nothing.
    return reply.code(404).send(fabricError('FABRIC_E_ENDPOINT_NOT_FOUND', 'The explorer has no such file.'));
  });
}
