FROM python:3.11-slim
WORKDIR /srv
COPY pyproject.toml README.md ./
COPY app ./app
COPY actors ./actors
COPY events ./events
RUN pip install --no-cache-dir . && useradd --create-home importer && mkdir -p /data && chown importer /data
USER importer
ENV IMPORTER_DATA_DIR=/data
EXPOSE 8000
CMD ["importer", "serve", "--host", "0.0.0.0", "--port", "8000"]
