# The CPU worker: the native engine built for x86-64 with run-time dispatch (AVX2, AVX-512 VNNI,
# AMX), ffmpeg for MP4, and the bundled tiny-shapes model.
# Build from the repository root:  docker build -f docker/worker-cpu.Dockerfile -t framefleet/worker-cpu:0.1.0 .
FROM node:20-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake ninja-build g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY native ./native
RUN npm ci && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/native/build/framefleet_native.node ./native/build/framefleet_native.node
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY models ./models
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/framefleet.js"]
CMD ["worker"]
