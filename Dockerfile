# syntax=docker/dockerfile:1
#
# The flux-catalog container image: the release binary on a distroless base, run as non-root.
#
#   docker build -t registry.example.com/platform/flux-catalog:0.1.0 .
#
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.

# Build: the official Rust image on Debian bookworm, running the same release build as CI
# (scripts/build-release.sh: cargo build --release --locked --bin flux-catalog). Rust 1.95 is
# the toolchain CI uses; the locked dependencies need at least 1.92 (refinery 0.10).
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
ENV CARGO_TARGET_DIR=/src/target
# The caches speed up rebuilds; the binary is copied out of the target cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    scripts/build-release.sh \
    && cp /src/target/release/flux-catalog /flux-catalog

# Run: glibc, libgcc, OpenSSL and the Mozilla CA certificates (/etc/ssl/certs), no shell, no
# package manager, user nonroot (65532).
#
# The image has no PostgreSQL: DATABASE_URL is required here. Without it flux-catalog would
# try to start an embedded PostgreSQL from the machine's installation, and there is none.
# AUTH_TOKEN is required to serve; see docs/configuration.md for every setting.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="flux-catalog" \
      org.opencontainers.image.description="Catalog of platform components and clusters, served to Flux Operator's ExternalService input providers" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /flux-catalog /flux-catalog
# glibc's malloc serves blocks of 64 KiB and more (connection buffers, request bodies) from
# mmap, so they go back to the system when freed instead of staying in its arenas: after 300
# clients that pipelined requests and never read had gone, the server held 48 MiB instead of
# 96 (bench/RESULTS.md, "Hostile clients"). The Flux read path allocates no such blocks.
ENV MALLOC_MMAP_THRESHOLD_=65536
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/flux-catalog"]
CMD ["serve"]
