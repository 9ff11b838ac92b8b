// A stock @grpc/grpc-js client with its default channel (no authority option): lists the
// daemon's services by reflection, checks health and calls hoard.v1.Hoard/Hello, then prints
// one JSON line. Usage: node grpcjs_default_channel.js <socket> <proto dir> <node_modules>
const path = require('path');
const [, , sock, protoDir, nm] = process.argv;
const grpc = require(path.join(nm, '@grpc/grpc-js'));
const loader = require(path.join(nm, '@grpc/proto-loader'));

const opts = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };
const load = (file, dirs) => grpc.loadPackageDefinition(loader.loadSync(file, { ...opts, includeDirs: dirs }));
const refl = load(path.join(nm, '@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto'), []);
const health = load(path.join(nm, 'grpc-health-check/proto/health/v1/health.proto'), []);
const hoard = load(path.join(protoDir, 'hoard/v1/hoard.proto'), [protoDir]);

const target = 'unix://' + sock;
const creds = grpc.credentials.createInsecure();
const fail = (what, e) => { console.error(`${what}: ${e && (e.stack || e.message || e)}`); process.exit(1); };

function services() {
  return new Promise((resolve, reject) => {
    const client = new refl.grpc.reflection.v1alpha.ServerReflection(target, creds);
    const call = client.ServerReflectionInfo();
    call.on('data', (m) => { resolve(m.list_services_response.service.map((s) => s.name)); call.end(); });
    call.on('error', reject);
    call.write({ list_services: '' });
  });
}

const unary = (client, method, req) => new Promise((resolve, reject) =>
  client[method](req, (err, res) => (err ? reject(err) : resolve(res))));

(async () => {
  const names = await services().catch((e) => fail('reflection', e));
  const h = await unary(new health.grpc.health.v1.Health(target, creds), 'Check', { service: 'hoard.v1.Hoard' })
    .catch((e) => fail('health', e));
  const hello = await unary(new hoard.hoard.v1.Hoard(target, creds), 'Hello',
    { protocol_version: '1.5.0', client_version: 'grpc-js' }).catch((e) => fail('Hello', e));
  console.log(JSON.stringify({ services: names, health: h.status, protocol: hello.protocol_version,
    compatible: hello.compatible, store: hello.store_path }));
  process.exit(0);
})();
