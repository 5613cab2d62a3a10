# Sourced by the test scripts: a TCP port for a server they start. Below Linux's ephemeral range
# (32768 and up), where an outgoing connection may hold any port for a while (a listener there fails
# now and then with "Address already in use"), and not one something already listens on.
free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 12000))
        ss -ltnH "sport = :$port" 2>/dev/null | grep -q . || break
    done
    echo "$port"
}
