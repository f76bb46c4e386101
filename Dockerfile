# qatserve container image.
#
#   docker build -t qatserve .
#   docker run --rm -p 8080:8080 -p 8081:8081 qatserve    # REST on 8080, gRPC on 8081
#   docker run --rm -p 8080:8080 -v "$PWD/models:/models:ro" qatserve   # your models, hot reload
#
# Stages, all from Debian 12 packages:
#   build         compiler + -dev packages; builds the binaries (not the tests).
#   runtime-libs  debian:bookworm-slim + the runtime library packages from apt,
#                 the binaries and models; runnable by itself (has a shell).
#   rootfs        collects from it the binaries, exactly the shared libraries
#                 they load (ldd) and those packages' copyright files.
#   (final)       FROM scratch + that tree: no shell, no package manager.
# Why not runtime-libs as the final image: slim alone is ~77 MB and OpenBLAS
# (libopenblas0-pthread, 43 MB: kernels for every x86 CPU) + libgfortran5 take
# it to ~126 MB, over the 100 MB target; the copied libraries are the same
# Debian-built files and the final image is about 50 MB.
# Debugging: `docker build --target runtime-libs -t qatserve:debug .`

ARG DEBIAN=debian:bookworm-slim

# --- build ---------------------------------------------------------------
FROM ${DEBIAN} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc make libc6-dev pkg-config \
      libmicrohttpd-dev libjansson-dev libuv1-dev libopenblas-dev zlib1g-dev \
      libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the binaries: the test runner needs Check and the tests run outside
# the image (make test). Kernels are picked at run time (AVX2 or reference),
# so the image runs on any x86-64 CPU. tools/qat.c may not exist yet.
RUN make -j"$(nproc)" build/qatserve \
 && if [ -f tools/qat.c ]; then make -j"$(nproc)" build/qat; fi \
 && mkdir -p /out/bin /out/models \
 && for b in build/qatserve build/qat; do [ ! -f "$b" ] || strip -o "/out/bin/${b#build/}" "$b"; done \
 && for m in models/*.safetensors; do [ ! -f "$m" ] || cp "$m" /out/models/; done

# --- runtime libraries ------------------------------------------------------
# Also a usable image by itself, with a shell: docker build --target runtime-libs
FROM ${DEBIAN} AS runtime-libs
# libopenblas0-pthread (not -openmp): the server pins BLAS to one thread and
# parallelises over requests instead. zlib1g and libgnutls30 (for
# libmicrohttpd) are already in slim; named for clarity.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libjansson4 libuv1 libopenblas0-pthread zlib1g libnghttp2-14 libprotobuf-c1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 qatserve \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin qatserve
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/models/ /models/
USER 10001:10001
ENV QATSERVE_HOST=0.0.0.0 QATSERVE_MODELS=/models PORT=8080
EXPOSE 8080 8081
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/qatserve"]

# --- the final image's root tree ---------------------------------------------
FROM runtime-libs AS rootfs
USER root
RUN set -eu; \
    R=/rootfs; mkdir -p "$R/usr/local/bin" "$R/etc" "$R/tmp" "$R/usr/share/doc"; \
    chmod 1777 "$R/tmp"; \
    cp -a /usr/local/bin/. "$R/usr/local/bin/"; \
    cp -a /models "$R/models"; \
    libs=$(for b in /usr/local/bin/*; do ldd "$b"; done \
           | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(0x/ {print $1}' | sort -u); \
    for lib in $libs; do \
      cp --parents -L "$lib" "$R/"; \
      real=$(readlink -f "$lib"); \
      pkg=$(dpkg -S "$real" 2>/dev/null | head -1 | cut -d: -f1); \
      if [ -n "$pkg" ] && [ -f "/usr/share/doc/$pkg/copyright" ]; then \
        mkdir -p "$R/usr/share/doc/$pkg"; cp "/usr/share/doc/$pkg/copyright" "$R/usr/share/doc/$pkg/"; \
      fi; \
    done; \
    echo 'root:x:0:0:root:/root:/sbin/nologin' > "$R/etc/passwd"; \
    echo 'qatserve:x:10001:10001:qatserve:/nonexistent:/sbin/nologin' >> "$R/etc/passwd"; \
    printf 'root:x:0:\nqatserve:x:10001:\n' > "$R/etc/group"; \
    chroot "$R" /usr/local/bin/qatserve --version; \
    if [ -x "$R/usr/local/bin/qat" ]; then chroot "$R" /usr/local/bin/qat --help >/dev/null; fi

# --- runtime ----------------------------------------------------------------
FROM scratch
COPY --from=rootfs /rootfs/ /
ENV PATH=/usr/local/bin \
    QATSERVE_HOST=0.0.0.0 \
    QATSERVE_MODELS=/models \
    PORT=8080
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /models
EXPOSE 8080 8081
# The server drains in-flight requests on SIGTERM and exits 0 (--drain-timeout,
# default 10 s: keep the orchestrator's stop timeout above it).
STOPSIGNAL SIGTERM
# No curl in the image: the binary probes itself (GET /v2/health/ready on
# $QATSERVE_HOST:$PORT, 0.0.0.0 meaning 127.0.0.1). Note: podman builds OCI
# images by default, which drop HEALTHCHECK; docker keeps it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/qatserve", "--probe"]
ENTRYPOINT ["/usr/local/bin/qatserve"]
