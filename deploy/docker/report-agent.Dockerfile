# report-agent: a static binary on distroless, as a non-root user.
# Build from the repository root: docker build -f deploy/docker/report-agent.Dockerfile .
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /out/report-agent ./services/report-agent

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/report-agent /report-agent
USER 65532:65532
ENTRYPOINT ["/report-agent"]
