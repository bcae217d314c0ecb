"""CPython's smtplib as a contestant (as the team harness's py_smtplib.py + common_py.py, in one file):
SMTP.sendmail() in a loop on one connection; CONNS > 1 uses one thread per connection.
Reads HOST PORT N RCPTS SIZE CONNS; prints `RESULT sent=<n> ms=<float> cpu_ms=<float> rss_kb=<int>`
(ms and cpu_ms from just before connecting to the reply to the last end of data)."""
import os
import resource
import smtplib
import threading
import time

HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "25250"))
N = int(os.environ.get("N", "1"))
RCPTS = int(os.environ.get("RCPTS", "1"))
SIZE = int(os.environ.get("SIZE", "1000"))
CONNS = int(os.environ.get("CONNS", "1"))
FROM = "sender@example.com"
RCPT_LIST = [f"rcpt{i + 1}@example.com" for i in range(RCPTS)]
HEADER = (b"From: <sender@example.com>\r\nTo: <rcpt1@example.com>\r\nSubject: bench\r\n"
          b"Message-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: text/plain; charset=us-ascii\r\n\r\n")
LINE = b"The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuv\r\n"
MSG = HEADER + LINE * max(1, -(-(SIZE - len(HEADER)) // len(LINE)))


def shares(n, k):
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def worker(n, out, idx, done):
    s = smtplib.SMTP(HOST, PORT, local_hostname="bench.local")
    s.ehlo()
    for _ in range(n):
        refused = s.sendmail(FROM, RCPT_LIST, MSG)
        if refused:
            raise RuntimeError(refused)
    out[idx] = n
    done[idx] = time.perf_counter()
    s.quit()


t0 = time.perf_counter()
cpu0 = time.process_time()
parts = [n for n in shares(N, CONNS) if n > 0]
out = [0] * len(parts)
done = [t0] * len(parts)
if len(parts) == 1:
    worker(parts[0], out, 0, done)
else:
    ts = [threading.Thread(target=worker, args=(n, out, i, done)) for i, n in enumerate(parts)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
cpu = time.process_time() - cpu0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"RESULT sent={sum(out)} ms={(max(done) - t0) * 1000:.3f} cpu_ms={cpu * 1000:.1f} rss_kb={rss}", flush=True)
