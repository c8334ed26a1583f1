# syntax=docker/dockerfile:1
#
# scalesocket in a scratch image: the standalone binary, the glibc loader and the four libraries it links
# (libc, libpthread, libdl, libm), an empty /proc to mount on, and nothing else: no shell, no cat, no /etc.
# scripts/ship/container-check.ts builds this file's final stage from the same root filesystem and runs it with podman.
#
#   docker build -t scalesocket .
#   docker run --rm --init -p 9000:9000 scalesocket --help
#
# The image holds no program to wrap: build on it (README, "Install"), or COPY the binary into your own image.
# Run it with --init (or `init: true`): as PID 1, scalesocket does not reap orphaned grandchildren of your
# program, and a tiny init does.

ARG BUN_VERSION=1.4.5

# Bun compiles for the platform it runs on, so this stage runs on the target platform (the release workflow
# builds each architecture on a native runner, without emulation).
FROM oven/bun:${BUN_VERSION} AS build
WORKDIR /src
# The packages the bundle inlines; dev tools (TypeScript, Biome, the npm `bun` package) are not needed.
COPY package.json package-lock.json ./
RUN bun install --production --ignore-scripts
COPY tsconfig.json README.md LICENSE ./
COPY src ./src
COPY scripts ./scripts
# The binary for this platform, then the image's root filesystem from it (`ldd` picks the libraries).
RUN bun scripts/ship/build.ts --target=host --no-archive \
 && bun scripts/ship/rootfs.ts /rootfs \
 && /rootfs/usr/local/bin/scalesocket --version

# scripts/ship/container-check.ts builds this stage with `podman build --build-context build=<folder>`, the
# folder holding a rootfs/ made by the same scripts, in place of the stage above: keep its name and /rootfs/.
FROM scratch
COPY --from=build /rootfs/ /
# Children are found on PATH; --passenv's default passes it on to them.
ENV PATH=/usr/local/bin:/usr/bin:/bin
# nobody: the server needs no privilege (9000 is above 1024) and neither should the programs it starts.
USER 65534:65534
EXPOSE 9000
ENTRYPOINT ["/usr/local/bin/scalesocket"]
CMD ["--help"]
