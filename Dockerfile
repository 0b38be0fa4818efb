# Liaowang for docker-compose.yml: the same code as `liaowang run`, with an external broker and InfluxDB.
FROM python:3.11.10-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY foundation ./foundation
COPY liaowang ./liaowang
COPY ingest ./ingest
COPY rules ./rules
COPY alerting ./alerting
COPY earlywarning ./earlywarning
COPY simulators ./simulators
COPY dashboards ./dashboards
RUN pip install --no-cache-dir . && useradd --system --uid 10001 liaowang && mkdir /data && chown liaowang /data
USER liaowang
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=5 CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
ENTRYPOINT ["liaowang"]
CMD ["run", "--no-simulators", "--config", "/config", "--data-dir", "/data"]
