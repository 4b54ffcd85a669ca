//! Compiles matchbox's gRPC protos (`proto/`, feature `grpc`) with `protox`
//! (pure Rust, no `protoc` needed) and `tonic-prost-build`.

fn main() {
    println!("cargo:rerun-if-changed=proto");
    #[cfg(feature = "grpc")]
    grpc();
}

#[cfg(feature = "grpc")]
fn grpc() {
    let files = [
        "proto/matchbox/rpc/rpcpb/rpc.proto",
        "proto/matchbox/server/serverpb/messages.proto",
        "proto/matchbox/storage/storagepb/storage.proto",
    ];
    let fds = match protox::compile(files, ["proto"]) {
        Ok(fds) => fds,
        Err(e) => panic!("compiling the matchbox protos: {e:?}"),
    };
    if let Err(e) = tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .compile_fds(fds)
    {
        panic!("generating the matchbox gRPC code: {e}");
    }
}
