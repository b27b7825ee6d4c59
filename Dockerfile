# kafka-edge in a small image: the static binary of scripts/release and the CA certificates,
# on an empty base (no shell, no libc, no package manager), running as an unprivileged user.
#
#   docker build -t kafka-edge .
#   docker run --rm -p 8082:8082 -p 8083:8083 -v "$PWD/examples:/etc/kafka-edge/apis:ro" kafka-edge
#
# Definitions are read from /etc/kafka-edge/apis (mount a directory or a ConfigMap there; changes
# are picked up without a restart). /health, /ready and /metrics answer on port 8083.
# GSSAPI (Kerberos) is not in this build: see docs/operations.md#static-binary-and-container.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools cmake perl make ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
ENV CC_x86_64_unknown_linux_musl=musl-gcc CXX_x86_64_unknown_linux_musl=g++ \
    CFLAGS_x86_64_unknown_linux_musl=-I/src/scripts/c-include
RUN cargo build --locked --profile dist --target x86_64-unknown-linux-musl -p kafka-edge-gateway \
      --no-default-features --features static \
 && mkdir /state

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/target/x86_64-unknown-linux-musl/dist/kafka-edge /kafka-edge
COPY --from=build --chown=65532:65532 /state /var/lib/kafka-edge
USER 65532:65532
ENV KAFKA_EDGE_LISTEN=0.0.0.0:8082 \
    KAFKA_EDGE_ADMIN_LISTEN=0.0.0.0:8083 \
    KAFKA_EDGE_STATE=file:/var/lib/kafka-edge/state
EXPOSE 8082 8083
ENTRYPOINT ["/kafka-edge"]
CMD ["run", "--api", "/etc/kafka-edge/apis"]
