#!/usr/bin/env python3
"""traffic.py — the traffic generators of the benchmark workload (benches/workload.sh runs them).

Every generator is bounded in count (its arguments) and in time (--deadline seconds, and workload.sh wraps each
process in `timeout`). They talk only to the lab's server namespace; nothing is routed out.

Servers (run in the server namespace):
  grpc-server --port P --stop-after S [--grace G]
      grpcio server, plain h2c, generic handlers on raw bytes, no protoc:
        /bench.Svc/Unary     echo (small)
        /bench.Svc/Download  request "N,SIZE" -> server streams N messages of SIZE bytes
        /bench.Svc/Upload    client streams messages; reply: total bytes received (decimal)
        /bench.Svc/Chat      bidi echo
        /bench.Svc/Slow      request "MS" -> sleep MS ms (the clients call it with a shorter deadline)
      after S seconds: server.stop(G) — GOAWAY to the channels still open, then close.
  tcp-server --deadline S
      bulk and churn servers, one port per behaviour (see PORTS below).

Clients (run in the client namespace):
  grpc-client --targets T1,T2 --channels N --mb-per-channel M --leave-open K --deadline S
      N channels in turn; each does unary calls, one download stream, one upload stream, one bidi chat, one
      call past its deadline, then closes (the last K channels are left open for the server's GOAWAY).
  bulk --hosts H1,H2 --mb M --flows F --deadline S
      F parallel flows (alternating download on 5001 / upload on 5002, alternating hosts) moving M MB in all.
  churn --hosts H1,H2 --count N --procs P --deadline S
      N short connections spread over the churn ports (one port per way of ending, one closed port).
Each client prints one JSON line on stdout: what it really did (counts), for the manifest.
"""
import argparse
import json
import os
import socket
import struct
import sys
import threading
import time

# Ports on the server, by kind. Kept in one place: workload.sh and verdicts.py read them from the manifest.
PORTS = {
    "h2": 8080,             # nghttpd (h2c, prior knowledge) <- h2load
    "grpc": 50051,          # grpcio server
    "bulk_down": 5001,      # client sends "N\n"; server sends N bytes, then closes first (shutdown write)
    "bulk_up": 5002,        # client sends N bytes, then closes first; server answers the count and closes
    "churn_client_close": 7000,  # request/response, the client closes first
    "churn_server_close": 7001,  # request/response, the server closes first
    "churn_client_abort": 7002,  # request/response, the client aborts (RST, SO_LINGER 0)
    "churn_refused": 7003,       # nothing listens: the server's kernel answers the SYN with RST
    "churn_server_abort": 7004,  # request, then the server aborts (RST, SO_LINGER 0) without answering
}
CHURN_KINDS = ["churn_client_close", "churn_server_close", "churn_client_abort", "churn_refused",
               "churn_server_abort"]

BLOCK = os.urandom(1 << 20)  # payload bytes; random so nothing along the way could compress them
LINGER0 = struct.pack("ii", 1, 0)


def log(*a):
    print(f"[traffic {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def addr_family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


# ------------------------------------------------------------------------------------------------ gRPC
def grpc_server(args):
    from concurrent import futures

    import grpc

    def unary(req, ctx):
        return req[:256]

    def download(req, ctx):
        n, size = (int(x) for x in req.decode().split(","))
        msg = BLOCK[:size]
        for _ in range(n):
            yield msg

    def upload(it, ctx):
        return str(sum(len(m) for m in it)).encode()

    def chat(it, ctx):
        for m in it:
            yield m

    def slow(req, ctx):
        end = time.monotonic() + min(int(req or b"0"), 10000) / 1000
        while time.monotonic() < end and ctx.is_active():
            time.sleep(0.01)
        return b"done"

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Download": grpc.unary_stream_rpc_method_handler(download),
        "Upload": grpc.stream_unary_rpc_method_handler(upload),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
    }
    opts = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=opts)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Svc", handlers),))
    server.add_insecure_port(f"[::]:{args.port}")
    server.start()
    log(f"grpc server on :{args.port}, stops after {args.stop_after}s with grace {args.grace}s")
    if args.stop_file:
        end = time.monotonic() + args.stop_after
        while time.monotonic() < end and not os.path.exists(args.stop_file):
            time.sleep(0.1)
    else:
        time.sleep(args.stop_after)
    server.stop(args.grace).wait(args.grace + 5)
    log("grpc server stopped")


def grpc_client(args):
    import grpc

    opts = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    targets = args.targets.split(",")
    end = time.monotonic() + args.deadline
    done = {"channels": 0, "left_open": 0, "unary": 0, "streams": 0, "deadline_exceeded": 0, "errors": 0,
            "bytes": 0}
    kept = []
    msg_size = 256 << 10
    per_dir = args.mb_per_channel * (1 << 20) // 2  # half down, half up (+ a little bidi)
    for i in range(args.channels):
        if time.monotonic() > end:
            log("grpc client: deadline reached")
            break
        target = targets[i % len(targets)]
        ch = grpc.insecure_channel(target, options=opts)
        try:
            grpc.channel_ready_future(ch).result(timeout=5)
            u = ch.unary_unary("/bench.Svc/Unary")
            for k in range(args.unary):
                u(b"x" * (16 + k % 200), timeout=10)
                done["unary"] += 1
            n = max(1, per_dir // msg_size)
            got = 0
            for m in ch.unary_stream("/bench.Svc/Download")(f"{n},{msg_size}".encode(), timeout=60):
                got += len(m)
            done["bytes"] += got
            done["streams"] += 1
            up = ch.stream_unary("/bench.Svc/Upload")
            r = up((BLOCK[:msg_size] for _ in range(n)), timeout=60)
            done["bytes"] += int(r)
            done["streams"] += 1
            chat = ch.stream_stream("/bench.Svc/Chat")
            for m in chat((BLOCK[: 100 + j * 37] for j in range(50)), timeout=30):
                done["bytes"] += 2 * len(m)
            done["streams"] += 1
            try:
                ch.unary_unary("/bench.Svc/Slow")(b"2000", timeout=0.2)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    done["deadline_exceeded"] += 1
                else:
                    raise
        except grpc.RpcError as e:  # counted, never retried
            log(f"grpc client: channel {i}: {e.code()} {e.details()}")
            done["errors"] += 1
        except grpc.FutureTimeoutError:
            log(f"grpc client: channel {i}: not ready in 5 s")
            done["errors"] += 1
        done["channels"] += 1
        if i >= args.channels - args.leave_open:
            kept.append(ch)  # left open: the server's stop (GOAWAY) ends it
            done["left_open"] += 1
        else:
            ch.close()
    if args.held_file:
        open(args.held_file, "w").close()
    if kept and args.hold:
        # Hold the open channels until the server goes away (or the deadline).
        while time.monotonic() < end and not os.path.exists(args.hold):
            time.sleep(0.1)
        time.sleep(1.0)
    for ch in kept:
        ch.close()
    print(json.dumps(done), flush=True)


# ------------------------------------------------------------------------------------------------ TCP servers
def _serve(sock, handler):
    while True:
        try:
            c, _ = sock.accept()
        except OSError:
            return
        threading.Thread(target=handler, args=(c,), daemon=True).start()


def _read_line(c, limit=64):
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < limit:
        d = c.recv(limit)
        if not d:
            break
        buf += d
    return buf


def _drain(c):
    try:
        while c.recv(1 << 16):
            pass
    except OSError:
        pass


def h_bulk_down(c):
    try:
        n = int(_read_line(c) or b"0")
        mv = memoryview(BLOCK)
        while n > 0:
            k = min(n, len(BLOCK))
            c.sendall(mv[:k])
            n -= k
        c.shutdown(socket.SHUT_WR)  # the server closes first
        _drain(c)
    except OSError:
        pass
    finally:
        c.close()


def h_bulk_up(c):
    total = 0
    try:
        while True:
            d = c.recv(1 << 20)
            if not d:
                break
            total += len(d)
        c.sendall(b"%d\n" % total)
    except OSError:
        pass
    finally:
        c.close()


RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Length: 120\r\n\r\n" + b"r" * 120


def h_churn(kind):
    def h(c):
        try:
            if kind == "churn_server_abort":
                _read_line(c)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
                return
            _read_line(c)
            c.sendall(RESPONSE)
            if kind == "churn_server_close":
                return
            _drain(c)  # wait for the client's FIN or RST
        except OSError:
            pass
        finally:
            c.close()
    return h


def tcp_server(args):
    handlers = {"bulk_down": h_bulk_down, "bulk_up": h_bulk_up}
    for k in CHURN_KINDS:
        if k != "churn_refused":
            handlers[k] = h_churn(k)
    for kind, h in handlers.items():
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", PORTS[kind]))
        s.listen(4096)
        threading.Thread(target=_serve, args=(s, h), daemon=True).start()
    log(f"tcp servers up for {args.deadline}s")
    time.sleep(args.deadline)


# ------------------------------------------------------------------------------------------------ clients
def bulk(args):
    hosts = args.hosts.split(",")
    total = args.mb << 20
    per_flow = total // args.flows
    end = time.monotonic() + args.deadline
    done = {"bulk_down": 0, "bulk_up": 0, "bytes": 0, "errors": 0}
    lock = threading.Lock()

    def flow(i):
        kind = "bulk_down" if i % 2 == 0 else "bulk_up"
        host = hosts[(i // 2) % len(hosts)]
        try:
            with socket.socket(addr_family(host), socket.SOCK_STREAM) as s:
                s.settimeout(max(1.0, end - time.monotonic()))
                s.connect((host, PORTS[kind]))
                got = 0
                if kind == "bulk_down":
                    s.sendall(b"%d\n" % per_flow)
                    while True:
                        d = s.recv(1 << 20)
                        if not d:
                            break
                        got += len(d)
                else:
                    mv = memoryview(BLOCK)
                    n = per_flow
                    while n > 0:
                        k = min(n, len(BLOCK))
                        s.sendall(mv[:k])
                        n -= k
                    s.shutdown(socket.SHUT_WR)  # the client closes first
                    got = int(_read_line(s) or b"0")
            with lock:
                done[kind] += 1
                done["bytes"] += got
        except OSError as e:
            log(f"bulk flow {i} ({kind} {host}): {e}")
            with lock:
                done["errors"] += 1

    ts = [threading.Thread(target=flow, args=(i,)) for i in range(args.flows)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(max(0.1, end - time.monotonic() + 5))
    print(json.dumps(done), flush=True)


def _churn_worker(hosts, kinds, count, deadline, out):
    done = {k: 0 for k in kinds}
    done["errors"] = 0
    end = time.monotonic() + deadline
    for i in range(count):
        if time.monotonic() > end:
            break
        kind = kinds[i % len(kinds)]
        host = hosts[(i // len(kinds)) % len(hosts)]
        s = socket.socket(addr_family(host), socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            if kind == "churn_refused":
                try:
                    s.connect((host, PORTS[kind]))
                    done["errors"] += 1  # something listens there: not a refusal
                except ConnectionRefusedError:
                    done[kind] += 1
                continue
            s.connect((host, PORTS[kind]))
            s.sendall(b"GET /%d HTTP/1.0\n" % i)
            if kind == "churn_server_abort":
                try:
                    while s.recv(4096):
                        pass
                except ConnectionResetError:
                    pass
                done[kind] += 1
                continue
            got = 0
            want = len(RESPONSE)
            while got < want:
                d = s.recv(4096)
                if not d:
                    break
                got += len(d)
            if kind == "churn_server_close":
                while s.recv(4096):  # the server's FIN
                    pass
            elif kind == "churn_client_abort":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            done[kind] += 1
        except OSError as e:
            done["errors"] += 1
            if done["errors"] <= 5:
                log(f"churn {kind} {host}: {e}")
        finally:
            s.close()
    out.put(done)


def churn(args):
    import multiprocessing as mp

    hosts = args.hosts.split(",")
    q = mp.Queue()
    per = args.count // args.procs
    ps = [mp.Process(target=_churn_worker, args=(hosts, CHURN_KINDS, per, args.deadline, q))
          for _ in range(args.procs)]
    for p in ps:
        p.start()
    total = {}
    for _ in ps:
        try:
            d = q.get(timeout=args.deadline + 10)
        except Exception:
            break
        for k, v in d.items():
            total[k] = total.get(k, 0) + v
    for p in ps:
        p.join(5)
        if p.is_alive():
            p.kill()
    print(json.dumps(total), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("grpc-server")
    p.add_argument("--port", type=int, default=PORTS["grpc"])
    p.add_argument("--stop-after", type=float, required=True)
    p.add_argument("--stop-file", help="stop as soon as this file exists (still bounded by --stop-after)")
    p.add_argument("--grace", type=float, default=2.0)
    p = sub.add_parser("grpc-client")
    p.add_argument("--targets", required=True)
    p.add_argument("--channels", type=int, required=True)
    p.add_argument("--mb-per-channel", type=int, required=True)
    p.add_argument("--unary", type=int, default=200)
    p.add_argument("--leave-open", type=int, default=0)
    p.add_argument("--hold", help="keep the left-open channels until this file exists")
    p.add_argument("--held-file", help="create this file once all calls are made (the channels are held)")
    p.add_argument("--deadline", type=float, required=True)
    p = sub.add_parser("tcp-server")
    p.add_argument("--deadline", type=float, required=True)
    p = sub.add_parser("bulk")
    p.add_argument("--hosts", required=True)
    p.add_argument("--mb", type=int, required=True)
    p.add_argument("--flows", type=int, default=8)
    p.add_argument("--deadline", type=float, required=True)
    p = sub.add_parser("churn")
    p.add_argument("--hosts", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--deadline", type=float, required=True)
    p = sub.add_parser("ports")
    args = ap.parse_args()
    if args.cmd == "ports":
        print(json.dumps(PORTS))
        return
    {"grpc-server": grpc_server, "grpc-client": grpc_client, "tcp-server": tcp_server, "bulk": bulk,
     "churn": churn}[args.cmd.replace("_", "-")](args)


if __name__ == "__main__":
    main()
