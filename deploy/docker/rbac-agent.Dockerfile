# rbac-agent: a static binary on distroless, as a non-root user.
# Build from the repository root: docker build -f deploy/docker/rbac-agent.Dockerfile .
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /out/rbac-agent ./services/rbac-agent

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rbac-agent /rbac-agent
USER 65532:65532
ENTRYPOINT ["/rbac-agent"]
