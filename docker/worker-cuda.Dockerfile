# The CUDA worker: the same engine with its CUDA kernels built for sm_90 (H100) and sm_120
# (RTX 5090); the worker picks CUDA when a GPU is visible and reports the backend in every result.
# Build from the repository root:  docker build -f docker/worker-cuda.Dockerfile -t framefleet/worker-cuda:0.1.0 .
# bench/gpu/check_cuda12.sh checks, on a machine without this toolkit, that the CUDA sources build for it.
ARG CUDA_VERSION=12.9.1
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake ninja-build g++ curl ca-certificates \
 && curl -fsSL https://deb.nodesource.com/setup_20.x | bash - && apt-get install -y nodejs && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY native ./native
ENV FRAMEFLEET_CUDA_ARCHS="90;120"
RUN npm ci && npm prune --omit=dev --ignore-scripts

FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu24.04
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg curl ca-certificates \
 && curl -fsSL https://deb.nodesource.com/setup_20.x | bash - && apt-get install -y nodejs \
 && apt-get purge -y curl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/native/build/framefleet_native.node ./native/build/framefleet_native.node
# The CUDA engine: the addon opens it from its own folder at model load (a missing library or GPU
# means the CPU path, named in every report).
COPY --from=build /app/native/build/framefleet_cuda_engine.so ./native/build/framefleet_cuda_engine.so
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY models ./models
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/framefleet.js"]
CMD ["worker"]
