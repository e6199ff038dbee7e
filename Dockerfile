# The fluxd image referenced by manifests/install.yaml and the Helm chart.
# One process; runs as a non-root user; no git or ssh binaries needed (dulwich, paramiko).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY fluxd ./fluxd
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
# gpg decrypts SOPS data keys held by PGP keys (Kustomization spec.decryption), as in Flux.
RUN apt-get update && apt-get install -y --no-install-recommends gnupg \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /install /usr/local
# Helm finds fluxd's post-renderer plugin here: the pod's writable /tmp (emptyDir).
ENV HELM_PLUGINS=/tmp/helm-plugins
USER 65534:65534
ENTRYPOINT ["fluxd"]
CMD ["run"]
