//! Compiles `proto/hoard/v1/*.proto` into Rust with tonic-prost-build. The .proto files are parsed
//! by protox (pure Rust), so no system `protoc` is needed; the encoded descriptor set is written
//! to OUT_DIR for gRPC server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/hoard/v1/hoard.proto"];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    {
        use prost::Message;
        std::fs::write(out.join("hoard_descriptor.bin"), fds.encode_to_vec())?;
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
