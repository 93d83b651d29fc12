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
CMD ["omnisql", "serve", "--config", "/etc/omnisql/tenant.yaml"]
