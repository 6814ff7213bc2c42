# zhili — one image with every binary (zhili-broker, zhili-<service>, zhili-gateway, zhilictl).
# docker-compose.yml picks the binary per service with `command:`.

# ---------------------------------------------------------------------------- build
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libzmq3-dev libprotobuf-c-dev protobuf-c-compiler liblmdb-dev \
        libuv1-dev libh2o-dev libwslay-dev libssl-dev \
        libjansson-dev libsodium-dev libcmocka-dev libxml2-dev libqrencode-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build build -j"$(nproc)" \
 && cmake --install build --prefix /out

# ---------------------------------------------------------------------------- runtime
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libzmq5 libprotobuf-c1 liblmdb0 libuv1 libh2o0.13 libwslay1 libssl3 \
        libjansson4 libsodium23 libxml2 libqrencode4 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
# Only what `install()` names ships: test services and benchmarks stay behind.
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/share/zhili/ /usr/share/zhili/
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/zhili --shell /usr/sbin/nologin zhili \
 && mkdir -p /var/lib/zhili \
 && chown zhili:zhili /var/lib/zhili
ENV ZHILI_DATA=/var/lib/zhili \
    ZHILI_WEB_DIR=/usr/share/zhili/web
VOLUME /var/lib/zhili
WORKDIR /var/lib/zhili
USER zhili
EXPOSE 7100 7101 7102 8080
CMD ["zhili-broker"]
