# Shared by bench/ab.sh and bench/startup.sh (sourced, not run).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# write_config FILE S3_PORT ADMIN_PORT DIR PERSIST: a single-node server with
# its data in DIR/data and "/" on the file:// under store DIR/ufs (durability
# from $DURABILITY, default fsync; credentials bench / bench-secret).
write_config() {
  cat > "$1" <<EOF2
[server]
s3_listen = "127.0.0.1:$2"
admin_listen = "127.0.0.1:$3"
data_dir = "$4/data"
durability = "${DURABILITY:-fsync}"
log_level = "warn"
[auth]
access_key = "bench"
secret_key = "bench-secret"
[[mount]]
path = "/"
ufs = "file://$4/ufs"
persist = $5
EOF2
}

# healthy ADMIN_PORT: true once the server answers /health.
healthy() { python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$1/health', timeout=1)" 2>/dev/null; }
