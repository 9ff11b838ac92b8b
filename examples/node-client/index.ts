// A TypeScript client of hoardd, with @grpc/grpc-js and the proto in this repository:
//
//   1. find the daemon's socket the way the `hoard` CLI does (proto/lib.rs `socket_path`);
//   2. handshake with Hello (and stop when the protocols are not compatible);
//   3. open a Watch on a project, then stream an Install of it, printing every event;
//   4. end the Watch once the install has finished.
//
// Usage: npx tsx index.ts <project dir>      (start the daemon first: `hoard daemon start`)
// Environment as for the CLI: HOARD_STORE_DIR, XDG_DATA_HOME, XDG_RUNTIME_DIR, and the npm
// configuration the daemon should read (npm_config_registry, HOME, …), forwarded with the request.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { blake3 } from '@noble/hashes/blake3';
import { bytesToHex } from '@noble/hashes/utils';

const PROTOCOL_VERSION = '1.6.0';

/** The store directory: $HOARD_STORE_DIR, else $XDG_DATA_HOME/hoard/store, else ~/.local/share/hoard/store. */
function storeDir(): string {
  const dir = process.env.HOARD_STORE_DIR
    || (process.env.XDG_DATA_HOME ? path.join(process.env.XDG_DATA_HOME, 'hoard', 'store')
      : path.join(os.homedir(), '.local', 'share', 'hoard', 'store'));
  return fs.realpathSync(dir);
}

/** <runtime dir>/hoard-<first 16 hex digits of BLAKE3(store path)>.sock */
function socketPath(store: string): string {
  const runtime = process.env.XDG_RUNTIME_DIR
    ? path.join(process.env.XDG_RUNTIME_DIR, 'hoard')
    : path.join(process.env.TMPDIR || '/tmp', `hoard-${process.getuid!()}`);
  const hex = bytesToHex(blake3(new TextEncoder().encode(store))).slice(0, 16);
  return path.join(runtime, `hoard-${hex}.sock`);
}

type Client = grpc.Client & Record<string, any>;

function hoardClient(socket: string): Client {
  // This repository's proto folder (HOARD_PROTO_DIR when the example runs from elsewhere).
  const protoDir = process.env.HOARD_PROTO_DIR || path.resolve(__dirname, '..', '..', 'proto');
  const def = loader.loadSync(path.join(protoDir, 'hoard', 'v1', 'hoard.proto'), {
    keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [protoDir],
  });
  const pkg = grpc.loadPackageDefinition(def) as any;
  return new pkg.hoard.v1.Hoard(`unix://${socket}`, grpc.credentials.createInsecure());
}

function hello(client: Client): Promise<any> {
  return new Promise((resolve, reject) => client.Hello(
    { protocol_version: PROTOCOL_VERSION, client_version: 'node-client-example' },
    (err: grpc.ServiceError | null, res: any) => (err ? reject(err) : resolve(res))));
}

/** The npm configuration the daemon reads comes from the client's environment. */
function requestEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && (/^npm_config_/i.test(k) || k === 'HOME' || k === 'PATH')) env[k] = v;
  }
  return env;
}

async function main(): Promise<void> {
  const project = fs.realpathSync(process.argv[2] || '.');
  const socket = socketPath(storeDir());
  const client = hoardClient(socket);
  const h = await hello(client);
  console.log(`hello: daemon ${h.daemon_version}, protocol ${h.protocol_version}, pid ${h.pid}, store ${h.store_path}`);
  if (!h.compatible) throw new Error(`the daemon speaks protocol ${h.protocol_version}, not ${PROTOCOL_VERSION}`);

  const watch = client.Watch({ project_dir: project });
  const watched = new Promise<void>((resolve) => {
    watch.on('data', (e: any) => {
      console.log(`watch: ${e.kind} ${e.message}`.trimEnd());
      if (e.kind === 'KIND_INSTALL_FINISHED') resolve();
    });
    watch.on('error', (e: grpc.ServiceError) => { if (e.code !== grpc.status.CANCELLED) console.error(`watch: ${e.message}`); resolve(); });
  });
  // The first Watch event says the stream is established; install only after it.
  await new Promise<void>((resolve) => watch.once('data', () => resolve()));

  await new Promise<void>((resolve, reject) => {
    const install = client.Install({ project_dir: project, env: requestEnv() });
    install.on('data', (ev: any) => {
      switch (ev.event) {
        case 'progress': console.log(`progress: ${ev.progress.phase} ${ev.progress.done}/${ev.progress.total}${ev.progress.finished ? ' done' : ''}`); break;
        case 'warning': console.log(`warning: [${ev.warning.code}] ${ev.warning.message}`); break;
        case 'info': console.log(`info: ${ev.info}`); break;
        case 'summary': console.log(`summary: ${ev.summary.total_packages} packages, ${ev.summary.added} added, ${ev.summary.downloaded} downloaded, ${ev.summary.total_millis} ms`); break;
      }
    });
    install.on('error', reject);
    install.on('end', resolve);
  });
  await Promise.race([watched, new Promise((r) => setTimeout(r, 5000))]);
  watch.cancel();
  client.close();
}

main().catch((e) => { console.error(`error: ${e.message || e}`); process.exit(1); });
