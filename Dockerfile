# pullq worker image: `docker compose up --scale worker=4` (see docker-compose.yml)
# Both stages run Node 24 LTS ("Krypton"), the line `.ci/run` also tests; package.json still admits
# Node >= 20 for running pullq outside this image (docs/dependencies.md).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts ./scripts
# npm ci runs `prepare`, which builds dist/; then drop the dev dependencies.
RUN npm ci && npm prune --omit=dev

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY examples ./examples
RUN mkdir -p /app/out && chown node:node /app/out
USER node
# SIGTERM from `docker stop` lets the worker finish in-flight requests (worker.shutdownTimeoutMs).
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["worker", "--config", "/config/pullq.config.json"]
