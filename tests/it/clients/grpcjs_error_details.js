// A stock @grpc/grpc-js client: an Install that cannot resolve, and the error's
// `grpc-status-details-bin` decoded as google.rpc.Status with protobufjs (proto-loader's own
// dependency). Prints one JSON line: code, message, and each ErrorInfo / PreconditionFailure.
// Usage: node grpcjs_error_details.js <socket> <proto dir> <node_modules> <project> <registry>
const path = require('path');
const [, , sock, protoDir, nm, project, registry] = process.argv;
const grpc = require(path.join(nm, '@grpc/grpc-js'));
const loader = require(path.join(nm, '@grpc/proto-loader'));
const protobuf = require(path.join(nm, 'protobufjs'));

const opts = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };
const hoard = grpc.loadPackageDefinition(
  loader.loadSync(path.join(protoDir, 'hoard/v1/hoard.proto'), { ...opts, includeDirs: [protoDir] }));
// google.rpc's messages, as published in googleapis (google/rpc/status.proto, error_details.proto).
const rpc = protobuf.parse(`syntax = "proto3"; package google.rpc;
  message Any { string type_url = 1; bytes value = 2; }
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
  message PreconditionFailure {
    message Violation { string type = 1; string subject = 2; string description = 3; }
    repeated Violation violations = 1; }`).root;

const client = new hoard.hoard.v1.Hoard('unix://' + sock, grpc.credentials.createInsecure());
const call = client.Install({ project_dir: project, env: { npm_config_registry: registry } });
call.on('data', () => {});
call.on('error', (err) => {
  const bin = err.metadata.get('grpc-status-details-bin')[0];
  const status = rpc.lookupType('google.rpc.Status').decode(bin);
  const details = status.details.map((d) => {
    const name = (d.typeUrl || d.type_url).split('/').pop();
    return { type: name, value: rpc.lookupType(name).toObject(rpc.lookupType(name).decode(d.value)) };
  });
  console.log(JSON.stringify({ code: err.code, message: err.details, details }));
  process.exit(0);
});
call.on('end', () => { console.error('the install succeeded'); process.exit(1); });
