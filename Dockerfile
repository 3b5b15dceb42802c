# syntax=docker/dockerfile:1
# CI cannot run Docker: `node dist/scripts/docker-replay.js` replays this file
# (its COPYs, RUNs and final stage) and starts the result; see docs/operations.md.

# Build stage: every dependency (the compiler is a dev one), the compiled broker,
# then the dev dependencies dropped again.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# `npm ci` runs `prepare`: tsconfig.build.json (which extends tsconfig.json)
# compiles src/ and scripts/, and with them what they import: bench/, which
# imports test/helpers/; tsconfig.browser.json builds the browser client.
COPY package.json package-lock.json tsconfig*.json ./
COPY src ./src
COPY scripts ./scripts
COPY bench ./bench
COPY test ./test
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

# Runtime stage: the compiled broker and its production dependencies only.
FROM node:20-bookworm-slim
# Inside the container every port listens on all interfaces: the container's
# network namespace is the boundary, and `docker run -p` or a Service decides
# who outside reaches which port (publish the backend port only to backends).
# The metrics port is on, unlike the broker's default, because /healthz and
# /readyz live there and health probes (Docker's HEALTHCHECK, the kubelet's
# httpGet, a load balancer) need them; the kubelet dials the pod's IP, not its
# loopback, hence 0.0.0.0.
ENV NODE_ENV=production \
    STRANDS_TCP_HOST=0.0.0.0 \
    STRANDS_METRICS_PORT=9090 \
    STRANDS_METRICS_HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/browser ./dist/browser
# The base image's `node` user, by number so that Kubernetes' runAsNonRoot can
# check it. The files above stay root's: the broker cannot rewrite its own code.
USER 1000:1000
# WebSocket, backends, metrics and health.
EXPOSE 8080 8081 9090
# Liveness, as `docker ps` and Compose show it: a broker with no backend is
# alive. bookworm-slim has no curl: Node's fetch does the GET.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.STRANDS_METRICS_PORT + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/src/main.js"]
