import { startExampleApi } from './example-api-server.js';

// `npm run example-api -- [port]`: the example API on its own, for trying
// pullq by hand (tokens: example-token-1, example-token-2; Bearer).

const port = Number(process.argv[2] ?? 8080);
const api = await startExampleApi({ port, host: '0.0.0.0', auth: { type: 'header', tokens: ['example-token-1', 'example-token-2'] } });
process.stdout.write(`example API listening on ${api.url.replace('0.0.0.0', 'localhost')} (GET /items/{id}, Bearer example-token-1 or example-token-2)\n`);
const stop = () => void api.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
