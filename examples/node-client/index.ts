// A TypeScript client of hoardd, with @grpc/grpc-js and the proto in this repository: what an
// editor extension does with the daemon's API.
//
//   1. find the daemon's socket the way the `hoard` CLI does (proto/lib.rs `socket_path`);
//   2. handshake with Hello: stop when `upgrade_required`, and check the capabilities it needs;
//   3. open a Watch on the project, then stream an Install of it under an operation id of its
//      own, while a second connection attaches to that operation (as an IDE follows an install
//      a terminal started) and both print the one `finished` event that ends it;
//   4. ask what the tree now is: ProjectStatus (does it need an install?), Tree, Why and Query
//      (npm's selectors);
//   5. show a structured error: a bad selector, decoded from `grpc-status-details-bin`
//      (google.rpc.Status with an ErrorInfo whose `reason` is stable);
//   6. start a second install and cancel it at once: its `finished` event says whether the
//      cancel took effect (project untouched) or came too late (install completed).
//
// Usage: npx tsx index.ts <project dir>      (start the daemon first: `hoard daemon start`)
// Environment as for the CLI: HOARD_STORE_DIR, XDG_DATA_HOME, XDG_RUNTIME_DIR, and the npm
// configuration the daemon should read (npm_config_registry, HOME, …), forwarded with requests.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import { blake3 } from '@noble/hashes/blake3';
import { bytesToHex } from '@noble/hashes/utils';

const PROTOCOL_VERSION = '1.7.0';
const NEEDED = ['Install', 'Watch', 'operations', 'Query', 'Tree', 'Why', 'ProjectStatus', 'structured-errors'];

/** The store directory: $HOARD_STORE_DIR, else $XDG_DATA_HOME/hoard/store, else ~/.local/share/hoard/store. */
function storeDir(): string {
  const dir = process.env.HOARD_STORE_DIR
    || (process.env.XDG_DATA_HOME ? path.join(process.env.XDG_DATA_HOME, 'hoard', 'store')
      : path.join(os.homedir(), '.local', 'share', 'hoard', 'store'));
  return fs.realpathSync(dir);
}

/** <runtime dir>/hoard-<first 16 hex digits of BLAKE3(store path)>.sock. (For the default store,
 *  `<runtime dir>/default.json` names the socket too, and `hoard daemon ensure --json` prints it.) */
function socketPath(store: string): string {
  let runtime = process.env.XDG_RUNTIME_DIR
    ? path.join(process.env.XDG_RUNTIME_DIR, 'hoard')
    : path.join(process.env.TMPDIR || '/tmp', `hoard-${process.getuid!()}`);
  // A socket path must fit 103 bytes on every Unix (macOS's $TMPDIR is long): else /tmp/hoard-<uid>.
  if (Buffer.byteLength(runtime) + '/hoard-0123456789abcdef.sock'.length > 103) runtime = `/tmp/hoard-${process.getuid!()}`;
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

/** A unary call as a promise. */
function call<T = any>(client: Client, method: string, req: object): Promise<T> {
  return new Promise((resolve, reject) => client[method](req,
    (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))));
}

/** google.rpc.Status and ErrorInfo, as googleapis publishes them. */
const rpc = protobuf.parse(`syntax = "proto3"; package google.rpc;
  message Any { string type_url = 1; bytes value = 2; }
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }`).root;

/** The ErrorInfo of a failed call: its stable reason and metadata. */
function errorInfo(err: grpc.ServiceError): { reason: string; metadata: Record<string, string> } | undefined {
  const bin = err.metadata?.get('grpc-status-details-bin')[0];
  if (!bin) return undefined;
  const status = rpc.lookupType('google.rpc.Status').decode(bin as Buffer) as any;
  for (const d of status.details) {
    if ((d.type_url || d.typeUrl).endsWith('google.rpc.ErrorInfo')) {
      return rpc.lookupType('google.rpc.ErrorInfo').toObject(rpc.lookupType('google.rpc.ErrorInfo').decode(d.value)) as any;
    }
  }
  return undefined;
}

/** The npm configuration the daemon reads comes from the client's environment. */
function requestEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && (/^npm_config_/i.test(k) || k === 'HOME' || k === 'PATH')) env[k] = v;
  }
  return env;
}

/** Print one install event (from the install's own stream or an attached one). */
function show(who: string, ev: any): void {
  switch (ev.event) {
    case 'operation': console.log(`${who}: operation ${ev.operation.operation_id} ${ev.operation.state}${ev.operation.waiting_for.length ? ' waiting for ' + ev.operation.waiting_for.join(', ') : ''}`); break;
    case 'progress': console.log(`${who}: progress: ${ev.progress.phase} ${ev.progress.done}/${ev.progress.total}${ev.progress.finished ? ' done' : ''}${ev.progress.package ? ' ' + ev.progress.package : ''}`); break;
    case 'warning': console.log(`${who}: warning: [${ev.warning.code}] ${ev.warning.message}`); break;
    case 'info': console.log(`${who}: info: ${ev.info}`); break;
    case 'summary': console.log(`${who}: summary: ${ev.summary.total_packages} packages, ${ev.summary.added} added, ${ev.summary.downloaded} downloaded, ${ev.summary.total_millis} ms`); break;
    case 'finished': console.log(`${who}: finished: ${ev.finished.outcome}${ev.finished.cancel ? ' (' + ev.finished.cancel + ')' : ''}${ev.finished.error ? ' ' + ev.finished.error.reason : ''}`); break;
  }
}

/** Stream an install with operation id `id`; `onOperation` runs once the daemon names it. */
function install(client: Client, project: string, id: string, extra: object, onOperation?: () => void): Promise<any> {
  return new Promise((resolve, reject) => {
    const stream = client.Install({ project_dir: project, env: requestEnv(), operation_id: id, ...extra });
    let finished: any;
    stream.on('metadata', (md: grpc.Metadata) => console.log(`install ${id}: header hoard-operation-id=${md.get('hoard-operation-id')[0]}`));
    stream.on('data', (ev: any) => {
      show(`install ${id}`, ev);
      if (ev.event === 'operation' && onOperation) { onOperation(); onOperation = undefined; }
      if (ev.event === 'finished') finished = ev.finished;
    });
    // A failed or cancelled install ends with an error status after its `finished` event.
    stream.on('error', (e: grpc.ServiceError) => (finished ? resolve(finished) : reject(e)));
    stream.on('end', () => resolve(finished));
  });
}

/** Follow operation `id` from another connection until its `finished` event. */
function attach(client: Client, id: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const stream = client.AttachOperation({ operation_id: id });
    let finished: any;
    stream.on('data', (ev: any) => { show('attached', ev); if (ev.event === 'finished') finished = ev.finished; });
    stream.on('error', reject);
    stream.on('end', () => resolve(finished));
  });
}

async function main(): Promise<void> {
  const project = fs.realpathSync(process.argv[2] || '.');
  const socket = socketPath(storeDir());
  const client = hoardClient(socket);
  const ide = hoardClient(socket); // a second connection, as another tool would have
  const h = await call(client, 'Hello', { protocol_version: PROTOCOL_VERSION, client_version: 'node-client-example' });
  console.log(`hello: daemon ${h.daemon_version}, protocol ${h.protocol_version}, pid ${h.pid}, store ${h.store_path}`);
  if (!h.compatible || h.upgrade_required) throw new Error(`the daemon speaks protocol ${h.protocol_version}, not ${PROTOCOL_VERSION}`);
  const missing = NEEDED.filter((c) => !h.capabilities.includes(c));
  if (missing.length) throw new Error(`the daemon lacks ${missing.join(', ')}`);

  const watch = client.Watch({ project_dir: project });
  const watched = new Promise<void>((resolve) => {
    watch.on('data', (e: any) => {
      const extra = [e.operation_id && `operation ${e.operation_id}`, e.file && path.basename(e.file), e.sync_state, e.outcome]
        .filter(Boolean).join(' ');
      console.log(`watch: ${e.kind} ${extra}`.trimEnd());
      if (e.kind === 'KIND_INSTALL_FINISHED') resolve();
    });
    watch.on('error', (e: grpc.ServiceError) => { if (e.code !== grpc.status.CANCELLED) console.error(`watch: ${e.message}`); resolve(); });
  });
  // The first Watch event says the stream is established; install only after it.
  await new Promise<void>((resolve) => watch.once('data', () => resolve()));

  const id = `node-example-${process.pid}`;
  let followed: Promise<any> | undefined;
  const mine = await install(client, project, id, {}, () => { followed = attach(ide, id); });
  const theirs = await followed;
  console.log(`outcomes: install ${mine.outcome}, attached ${theirs?.outcome}`);
  await Promise.race([watched, new Promise((r) => setTimeout(r, 5000))]);
  watch.cancel();

  const status = await call(client, 'ProjectStatus', { project_dir: project });
  console.log(`status: ${status.project.sync_state} ${status.project.reason}`.trimEnd());
  const tree = await call(client, 'Tree', { project_dir: project, depth: 1 });
  console.log(`tree: ${tree.nodes.length - 1} packages at the top`);
  const top = tree.nodes.find((n: any) => n.depth === 1);
  if (top) {
    const why = await call(client, 'Why', { project_dir: project, package: top.package_name });
    const first = why.targets[0].chains[0].steps[0];
    console.log(`why ${top.package_name}: ${first.type} dependency of ${first.from_location || 'the project'} (${first.spec})`);
  }
  const q = await call(client, 'Query', { project_dir: project, selector: ':root > *' });
  console.log(`query :root > *: ${q.items.map((i: any) => i.pkgid).join(' ')}`);
  try {
    await call(client, 'Query', { project_dir: project, selector: ':nope' });
  } catch (e) {
    const info = errorInfo(e as grpc.ServiceError);
    console.log(`error: code ${(e as grpc.ServiceError).code} reason ${info?.reason} npm_code ${info?.metadata.npm_code}`);
  }

  // Cancel an install as soon as it is accepted: the outcome says what really happened.
  const again = `${id}-cancelled`;
  const f = await install(client, project, again, { force: true }, () => {
    call(client, 'CancelOperation', { operation_id: again })
      .then((r: any) => console.log(`cancel: ${r.cancelled ? 'taken' : 'refused'} (${r.state})`))
      .catch((e: Error) => console.log(`cancel: ${e.message}`));
  });
  console.log(`cancelled install: ${f.outcome}`);
  const ops = await call(client, 'ListOperations', {});
  console.log(`operations: ${ops.operations.map((o: any) => `${o.operation_id}=${o.outcome}`).join(' ')}`);
  client.close();
  ide.close();
}

main().catch((e) => { console.error(`error: ${e.message || e}`); process.exit(1); });
