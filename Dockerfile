# syntax=docker/dockerfile:1
#
# Two stages so the image carries neither the TypeScript compiler nor the test and benchmark
# tooling (devDependencies): the build stage compiles, the runtime stage gets production
# dependencies and the compiled JavaScript only.
#
#   docker build -t edge-gateway:0.4.0 .
#   docker run --rm -p 8080:8080 -v "$PWD/my-config:/etc/gateway:ro" edge-gateway:0.4.0
#
# Kubernetes manifests using this image: deploy/kubernetes/ (docs/operations.md).

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run tsc before the sources are copied; `npm run build` below
# compiles once they are. No dependency has an install script of its own.
RUN npm ci --ignore-scripts --no-audit --no-fund
# Only what the gateway runs: tsconfig's other folders (tests, benchmarks, dev scripts) are absent
# and simply not compiled.
COPY tsconfig.json ./
COPY src ./src
COPY plugins ./plugins
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (tsc) is a devDependency, absent here; the code comes compiled from
# the build stage. The cache is dropped in the same layer so it never reaches the image.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
# dist/src/cli/main.js imports ../../plugins/..., so both trees keep their relative layout.
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/plugins ./dist/plugins
# The shipped config and its JSON Schemas as defaults (the schemas serve editors opening the
# files); a volume or a Kubernetes ConfigMap mounted on /etc/gateway replaces them. Owned by root,
# so the gateway can read its config but never rewrite it.
COPY config/gateway.yaml config/routes.yaml /etc/gateway/
COPY config/schema /etc/gateway/schema/

# The node image's `node` user, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 1000:1000

# Public listener and admin listener of the shipped config. The shipped gateway.yaml binds the
# admin port to 127.0.0.1; deploy/kubernetes/configmap.yaml shows why and how to open it in a pod.
EXPOSE 8080 9901

# Only plain Docker reads this (Kubernetes uses the probes in deployment.yaml). node, because the
# slim image has no curl; 127.0.0.1 answers whether admin binds loopback or 0.0.0.0.
HEALTHCHECK --interval=10s --timeout=2s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# node runs as PID 1 without an init: the gateway installs its own SIGTERM/SIGINT/SIGHUP handlers
# (PID 1 gets no default ones) and starts no child processes that would need reaping.
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["--config", "/etc/gateway/gateway.yaml"]
