# syntax=docker/dockerfile:1
# skillserve — one image for every role. The entry point is the skillserve CLI:
#   docker run IMAGE gateway | dispatcher | skill | keys … | nginx-config … | probe …
# Build: docker build -t skillserve:local .   (docker-compose-ml.yml builds it for you)
ARG NODE_IMAGE=node:20-bookworm-slim

# 1. Build: dev dependencies, TypeScript → dist/, and the example ONNX models (deterministic).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY proto ./proto
COPY scripts ./scripts
RUN npm run build && node --import tsx scripts/generate-models.ts /app/models

# 2. Production dependencies only; onnxruntime's binaries for other platforms are dropped (~250 MB).
FROM ${NODE_IMAGE} AS prod-deps
ARG TARGETARCH
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error \
 && keep="$([ "$TARGETARCH" = arm64 ] && echo arm64 || echo x64)" \
 && drop="$([ "$keep" = x64 ] && echo arm64 || echo x64)" \
 && rm -rf node_modules/onnxruntime-node/bin/napi-v*/darwin node_modules/onnxruntime-node/bin/napi-v*/win32 \
           "node_modules/onnxruntime-node/bin/napi-v6/linux/$drop"

# 3. Runtime: node, the compiled CLI and its data files; no npm, no compilers, not root.
FROM ${NODE_IMAGE} AS runtime
# npm, npx, corepack and yarn are not needed to run and would only widen the attack surface.
# /etc/skillserve/nginx is the one place a non-root process writes outside /tmp: the nginx config
# the nginx-config one-shot renders into a shared volume (Docker gives the volume this owner).
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-* \
 && mkdir -p /etc/skillserve/nginx && chown 1000:1000 /etc/skillserve/nginx
WORKDIR /app
# Files belong to root and are read-only for the process (uid 1000): the image cannot be changed from inside.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The small example models; the 139 MB benchmark model (mlp) stays out. Mount your own
# model repository and set MODEL_REPOSITORY to serve other models.
COPY --from=build /app/models/classifier ./models/classifier
COPY --from=build /app/models/embedder ./models/embedder
COPY package.json ./
COPY proto ./proto
COPY nginx ./nginx
# Containers: bind every interface, fixed ports (gateway HTTP, skill gRPC, admin /metrics /healthz /readyz).
# The read-only root filesystem needs only /tmp writable (a tmpfs or emptyDir).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    GATEWAY_PORT=8801 \
    SKILL_PORT=50051 \
    METRICS_PORT=9464 \
    MODEL_REPOSITORY=/app/models \
    RUN_DIR=/tmp/skillserve
USER 1000:1000
EXPOSE 8801 50051 9464
# Readiness on the admin port; skills are checked with `probe grpc` (compose sets it per service).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/app/dist/cli.js", "probe"]
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["--help"]
