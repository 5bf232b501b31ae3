# The operator image: Node 20, the TypeScript sources run through tsx, no native addon.
# Build from the repository root:  docker build -f docker/operator.Dockerfile -t framefleet/operator:0.1.0 .
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production FRAMEFLEET_SKIP_NATIVE_BUILD=1
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY crds ./crds
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/framefleet.js"]
CMD ["operator"]
