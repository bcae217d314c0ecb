// A tiny SMTP server that records every byte it receives, for tests that run it somewhere the
// test process cannot reach in memory (inside a network namespace: test/support/netns.ts).
//
//   node recordingSmtpServer.mjs <address> [port]
//
// It offers AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER over plaintext (no STARTTLS) and refuses every
// credential (535). Everything goes to stdout as JSON lines:
//   {"listening":{"address":"10.199.0.2","port":40123}}
//   {"connection":1,"data":"<base64 of the bytes received>"}
//   {"connection":1,"closed":true}
import * as net from "node:net"

const [address = "127.0.0.1", port = "0"] = process.argv.slice(2)
const emit = (event) => process.stdout.write(JSON.stringify(event) + "\n")

let connections = 0
const server = net.createServer((socket) => {
  const id = ++connections
  let buffer = ""
  // "command", or the AUTH step the next line answers: "login-user", "login-password", "response"
  let state = "command"
  const send = (text) => socket.write(text + "\r\n")
  socket.on("error", () => {})
  socket.on("close", () => emit({ connection: id, closed: true }))
  socket.on("data", (chunk) => {
    emit({ connection: id, data: chunk.toString("base64") })
    buffer += chunk.toString("latin1")
    let end
    while ((end = buffer.indexOf("\r\n")) !== -1) {
      const line = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      onLine(line)
    }
  })
  const onLine = (line) => {
    if (state !== "command") {
      const step = state
      state = "command"
      if (line === "*") return send("501 5.7.0 Authentication cancelled")
      if (step === "login-user") {
        state = "login-password"
        return send("334 UGFzc3dvcmQ6")
      }
      return send("535 5.7.8 Authentication credentials invalid")
    }
    const [verb = "", mechanism = "", initial] = line.split(" ")
    switch (verb.toUpperCase()) {
      case "EHLO":
        return send("250-ns.test\r\n250-AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER\r\n250 8BITMIME")
      case "HELO":
        return send("250 ns.test")
      case "AUTH": {
        const name = mechanism.toUpperCase()
        if (!["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"].includes(name)) {
          return send("504 5.5.4 Unrecognized authentication type")
        }
        if (initial !== undefined) {
          if (name !== "LOGIN") return send("535 5.7.8 Authentication credentials invalid")
          state = "login-password"
          return send("334 UGFzc3dvcmQ6")
        }
        state = name === "LOGIN" ? "login-user" : "response"
        return send(name === "LOGIN" ? "334 VXNlcm5hbWU6" : "334 ")
      }
      case "NOOP":
      case "RSET":
        return send("250 2.0.0 OK")
      case "QUIT":
        send("221 2.0.0 Bye")
        return socket.end()
      default:
        return send("502 5.5.2 Error: command not recognized")
    }
  }
  send("220 ns.test ESMTP recorder")
})

server.listen(Number(port), address, () => {
  const bound = server.address()
  emit({ listening: { address: bound.address, port: bound.port } })
})
