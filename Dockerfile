# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the dev dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

# Runtime stage: the compiled broker and its production dependencies only.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    STRANDS_TCP_HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
USER node
EXPOSE 8080 8081
ENTRYPOINT ["node", "dist/src/main.js"]
