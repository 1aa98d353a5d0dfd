# entra-agent: a static binary on distroless, as a non-root user.
# Build from the repository root: docker build -f deploy/docker/entra-agent.Dockerfile .
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /out/entra-agent ./services/entra-agent

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/entra-agent /entra-agent
USER 65532:65532
ENTRYPOINT ["/entra-agent"]
