FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY flight_server flight_server
COPY planner planner
COPY connectors connectors
COPY security security
COPY clients clients
RUN pip install --no-cache-dir .
USER nobody
EXPOSE 8815
# The HTTP API, web console, /metrics and health checks (--http-port; --no-http turns them off).
EXPOSE 8001
# Inside a container the server must listen on every interface (the tenant file's listen.host is often 127.0.0.1);
# the port stays the file's (listen.port, default 8815). tests/test_cli.py checks the CLI accepts this command line.
CMD ["omnisql", "serve", "--config", "/etc/omnisql/tenant.yaml", "--host", "0.0.0.0"]
