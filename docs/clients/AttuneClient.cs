// AttuneClient.cs: example subscriber for the attune daemon, protocol v1 (docs/protocol.md).
//
// NOT COMPILED IN CI: this repository's CI builds Rust only and has no .NET SDK. The file was
// written for .NET 6+ (System.Net.Sockets.UnixDomainSocketEndPoint, System.Text.Json) and kept to
// C# 7.3 syntax so that older Unity versions accept it. It was last checked by hand on Mono 6.8
// (mcs), with a stand-in for System.Text.Json, against a fake daemon; never against a real .NET SDK.
//
// Run it as a console program (.NET 6 or later):
//     dotnet new console -o attune-client && cd attune-client && rm Program.cs
//     cp .../docs/clients/AttuneClient.cs . && dotnet run -- --topics adaptation,state --count 20
//     dotnet run -- --ws "ws://127.0.0.1:8765/?token=$(cat ~/.local/share/attune/ws-token)"
//     dotnet run -- --ws ws://127.0.0.1:8765/ --token-file ~/.local/share/attune/ws-token
// Options: --socket PATH, --ws URL, --token-file PATH, --participant ID (default "*"),
// --topics a,b,c, --count N.
// Exit codes: 0 after --count adaptation messages or when the daemon closes normally; 1 when the
// socket cannot be reached or fails the trust checks (or the WebSocket cannot be reached or its
// handshake is refused: a wrong token, a Host or Origin not allowed), the daemon closes before its
// welcome (uid not allowed), or after a fatal error (unsupported_protocol, line_too_long,
// idle_timeout, too_many_clients); 2 for a bad command line.
//
// WebSocket (`attune run --ws [ADDR]`, docs/protocol.md, "Other transports"): the same protocol,
// one text message per line in both directions, through System.Net.WebSockets.ClientWebSocket
// (built into .NET, .NET Framework 4.5+ on Windows 8+, Mono and Unity; no package). --ws URL connects to
// ws://HOST:PORT/ instead of the socket (default address 127.0.0.1:8765). The handshake needs the
// token in <data-dir>/ws-token (data dir: $XDG_DATA_HOME/attune, or ~/.local/share/attune;
// `attune token` prints where): either in the URL as ?token=TOKEN, or --token-file PATH, which
// sends it as "Authorization: Bearer TOKEN" (it then stays out of the command line and the URL).
// A refused handshake is one line on stderr and exit code 1: HTTP 401 is the token, 403 the Host
// or Origin. ClientWebSocket does not hand over the daemon's one-line reason (the response body),
// and on Mono not even the status, so after a refusal the client sends the same request once more
// over a plain TCP connection to read them (ws:// only; `attune status` then counts the refusal
// twice). The socket's trust checks do not apply (TCP has no peer uid): the token is the gate, so
// keep it as private as the data directory it lives in, and out of logs (error lines here print
// the URL without its ?token=). As on the socket, one thread reads; ClientWebSocket also allows
// one send at a time alongside it.
//
// Trust checks (docs/protocol.md, "Transport and security"), done before a byte is sent; anyone can
// listen at a path, and a socket in someone else's directory may be theirs:
// - the socket's directory must not be a symbolic link (FileAttributes.ReparsePoint);
// - on .NET 7+, its mode must have no group or other bits (File.GetUnixFileMode);
// - after connecting, the daemon must run as our effective uid (SO_PEERCRED through
//   Socket.GetRawSocketOption, .NET 5+; the uid from /proc/self/status).
// What it cannot check: .NET has no API for a file's owner, so the directory's owner is not
// checked (the peer-uid check is the real gate and catches another user's daemon); on .NET 6 the
// mode is not checked; where GetRawSocketOption is missing (Mono, some Unity players) the peer uid
// is not checked, and Connect() then fails closed unless allowUnverifiedPeer is true.
// These checks were added without a .NET SDK at hand and have not been compiled. The WebSocket
// path was compiled with Mono 6.8's mcs (with the same stand-ins) and run on Mono against
// `attune run --simulate p01 --ws` (data, token in the URL and in a file, 401, 403, shutdown) and a
// test server (fragmented and 200 KiB messages, ping, close, a dropped connection); not on .NET.
//
// Using it from Unity (Unity runs Mono or IL2CPP with a .NET Standard 2.1 / .NET Framework 4.x API,
// not .NET 6):
// - Main() is left out when UNITY_5_3_OR_NEWER is defined; use the AttuneClient class from a
//   MonoBehaviour as shown in the comment at the end of this file.
// - System.Text.Json is not part of Unity. Either copy the System.Text.Json DLL and its dependencies
//   (System.Memory, System.Buffers, System.Runtime.CompilerServices.Unsafe, System.Text.Encodings.Web,
//   Microsoft.Bcl.AsyncInterfaces, System.Threading.Tasks.Extensions, System.Numerics.Vectors) from
//   NuGet into Assets/Plugins, or rewrite the two small methods marked "JSON" below with
//   Newtonsoft.Json (Unity package com.unity.nuget.newtonsoft-json). JsonUtility is a poor fit: it
//   cannot tell a null arousal from 0 and cannot dispatch on "type".
// - UnixDomainSocketEndPoint is a .NET Standard 2.1 type; Mono keeps it in System.Core, and some
//   players/IL2CPP builds throw PlatformNotSupportedException or strip it. CreateEndPoint() then
//   falls back to UnixSocketEndPoint below, a plain sockaddr_un EndPoint (what Mono.Posix's
//   UnixEndPoint does). Define ATTUNE_CUSTOM_ENDPOINT to always use the fallback.
// - The daemon runs on Linux. The Unity editor or a player on the same Linux machine can connect; a
//   Windows or macOS editor, Android, iOS and WebGL cannot reach a Linux Unix socket. Over
//   WebSocket (new AttuneClient(new Uri("ws://..."), token)) any player that can reach the daemon's
//   address can connect (by default 127.0.0.1, the same machine; `attune run --ws ADDR` and
//   [ws] allowed_hosts for others), except WebGL: there use the browser's WebSocket, as in
//   docs/protocol.md. The constructor blocks for the handshake (at most 10 s): call it from the
//   background thread that reads, not from Start().
// - Never read the socket on Unity's main thread: Receive() blocks. Read on a background thread and
//   hand messages to Update() through a ConcurrentQueue, as in the example at the end.

using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace Attune.Client
{
    /// <summary>The fields of an adaptation message most apps need; RawJson has everything.</summary>
    public sealed class Adaptation
    {
        public string Participant;
        public double T;              // stream time, s
        public string Action;         // "ease_off" | "hold" | "escalate"; treat anything else as "hold"
        public double? Arousal;       // 0..1, 0.5 = the participant's baseline; null = unknown
        public double Confidence;     // 0..1
        public string ArousalState;   // "low" | "normal" | "high" | "unknown"
        public string Rule;           // reason.rule
        public string Summary;        // reason.summary, one human-readable sentence
        public string RawJson;
    }

    /// <summary>A blocking line-oriented client for the attune socket, or for its WebSocket. One
    /// reader thread only.</summary>
    public sealed class AttuneClient : IDisposable
    {
        public const int Protocol = 1;
        static readonly string[] KnownTopics = { "adaptation", "state", "features" };
        const int HandshakeTimeoutMs = 10000;   // the daemon itself gives a handshake 5 s
        const int CloseTimeoutMs = 1000;

        readonly Socket socket;                 // null over WebSocket
        readonly ClientWebSocket webSocket;     // null over the Unix socket
        readonly byte[] receiveBuffer = new byte[64 * 1024];
        byte[] pending = new byte[64 * 1024];   // bytes received but not yet returned as a line
        int pendingLength;

        /// <summary>$XDG_RUNTIME_DIR/attune/attune.sock, or /tmp/attune-&lt;uid&gt;/attune.sock.</summary>
        public static string DefaultSocketPath()
        {
            string runtimeDir = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
            if (!string.IsNullOrEmpty(runtimeDir))
                return runtimeDir.TrimEnd('/') + "/attune/attune.sock";
            return "/tmp/attune-" + CurrentUid() + "/attune.sock";
        }

        /// <summary>Where the daemon keeps its WebSocket token by default:
        /// $XDG_DATA_HOME/attune/ws-token, or ~/.local/share/attune/ws-token (`attune token` prints
        /// the one in use; a daemon started with --data-dir keeps it there).</summary>
        public static string DefaultTokenPath()
        {
            string dataHome = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
            if (!string.IsNullOrEmpty(dataHome))
                return dataHome.TrimEnd('/') + "/attune/ws-token";
            string home = Environment.GetEnvironmentVariable("HOME");
            if (string.IsNullOrEmpty(home))
                home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            return home.TrimEnd('/') + "/.local/share/attune/ws-token";
        }

        /// <summary>Reads a token file (64 hex characters and a newline). Throws IOException or
        /// UnauthorizedAccessException when it cannot be read, InvalidDataException when it is empty.</summary>
        public static string ReadTokenFile(string path)
        {
            string token = System.IO.File.ReadAllText(path).Trim();
            if (token.Length == 0)
                throw new System.IO.InvalidDataException("the file is empty");
            return token;
        }

        /// <summary>The real uid, read from /proc (no P/Invoke, so it also works under IL2CPP).</summary>
        static string CurrentUid()
        {
            return UidField(0);
        }

        /// <summary>The effective uid, the one the daemon must run as.</summary>
        static uint EffectiveUid()
        {
            return uint.Parse(UidField(1));
        }

        // "Uid:" in /proc/self/status lists the real, effective, saved and filesystem uids.
        static string UidField(int index)
        {
            foreach (string line in System.IO.File.ReadAllLines("/proc/self/status"))
            {
                if (line.StartsWith("Uid:", StringComparison.Ordinal))
                    return line.Substring(4).Split(new[] { '\t', ' ' }, StringSplitOptions.RemoveEmptyEntries)[index];
            }
            throw new InvalidOperationException("cannot find the uid in /proc/self/status");
        }

        /// <summary>
        /// Connects. Throws SocketException when no daemon listens at the path, and
        /// UntrustedSocketException when the socket's directory or the daemon's uid fails the trust
        /// checks (see the header); nothing has been sent then. Pass allowUnverifiedPeer = true
        /// only on a runtime without GetRawSocketOption, accepting that the peer is not checked.
        /// </summary>
        public AttuneClient(string socketPath, bool allowUnverifiedPeer = false)
        {
            CheckSocketDirectory(socketPath);
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                socket.Connect(CreateEndPoint(socketPath));
                CheckPeer(socket, socketPath, allowUnverifiedPeer);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Connects over WebSocket (`attune run --ws`): ws://127.0.0.1:8765/?token=TOKEN, or the URL
        /// without ?token= and the token here, sent as "Authorization: Bearer TOKEN". Blocks until
        /// the handshake is done (at most 10 s). Throws WebSocketRefusedException when the daemon
        /// refuses the handshake (HTTP 401: the token; 403: the Host or Origin), and
        /// WebSocketException (or TimeoutException) when nothing answers; nothing has been sent then.
        /// </summary>
        public AttuneClient(Uri webSocketUrl, string token = null)
        {
            if (webSocketUrl == null || !webSocketUrl.IsAbsoluteUri
                || (webSocketUrl.Scheme != "ws" && webSocketUrl.Scheme != "wss"))
                throw new ArgumentException("expected a ws:// URL: ws://HOST:PORT/?token=TOKEN");
            webSocket = new ClientWebSocket();
            if (!string.IsNullOrEmpty(token))
                webSocket.Options.SetRequestHeader("Authorization", "Bearer " + token);
#if NET7_0_OR_GREATER
            webSocket.Options.CollectHttpResponseDetails = true;   // for HttpStatusCode when refused
#endif
            try
            {
                using (var timeout = new CancellationTokenSource(HandshakeTimeoutMs))
                {
                    Task connect = webSocket.ConnectAsync(webSocketUrl, timeout.Token);
                    // Mono does not cancel a handshake that waits for the server's answer, so wait
                    // no longer than the timeout here (Dispose() below then abandons it).
                    if (Task.WhenAny(connect, Task.Delay(HandshakeTimeoutMs)).GetAwaiter().GetResult() != connect)
                        throw new OperationCanceledException();
                    connect.GetAwaiter().GetResult();   // its exception, if it failed
                }
            }
            catch (Exception e) when (e is WebSocketException || e is OperationCanceledException
                                      || e is WebException || e is System.IO.IOException)
            {
                int status = HandshakeStatus(webSocket, e);
                webSocket.Dispose();
                string where = webSocketUrl.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);   // no ?token=
                if (HasCause<OperationCanceledException>(e))
                    throw new TimeoutException("no answer to the WebSocket handshake within "
                                               + HandshakeTimeoutMs / 1000 + " s");
                // Something answered (the TCP connection was made) but did not switch protocols.
                int asked;
                string reason = null;
                if (!HasCause<SocketException>(e) && AskWhyRefused(webSocketUrl, token, out asked, out reason))
                    status = asked;
                if (status > 0 && status != 101)
                    throw new WebSocketRefusedException(status, reason, where);
                throw;
            }
            catch
            {
                webSocket.Dispose();
                throw;
            }
        }

        static bool HasCause<T>(Exception e) where T : Exception
        {
            for (Exception x = e; x != null; x = x.InnerException)
            {
                if (x is T) return true;
            }
            return false;
        }

        /// <summary>The HTTP status the daemon refused the handshake with, or 0 when the exception
        /// does not say. .NET 7+ reports it; .NET Core in the message ("status code '401'"), .NET
        /// Framework as a WebException's response; Mono does not say at all.</summary>
        static int HandshakeStatus(ClientWebSocket ws, Exception e)
        {
#if NET7_0_OR_GREATER
            if (ws.HttpStatusCode != 0) return (int)ws.HttpStatusCode;
#endif
            for (Exception x = e; x != null; x = x.InnerException)
            {
                var web = x as WebException;
                if (web != null && web.Response is HttpWebResponse)
                    return (int)((HttpWebResponse)web.Response).StatusCode;
                if (x is WebSocketException)
                {
                    // "The server returned status code '401' when status code '101' was expected."
                    foreach (System.Text.RegularExpressions.Match quoted in
                             System.Text.RegularExpressions.Regex.Matches(x.Message, "'([1-5][0-9][0-9])'"))
                    {
                        if (quoted.Groups[1].Value != "101") return int.Parse(quoted.Groups[1].Value);
                    }
                }
            }
            return 0;
        }

        /// <summary>
        /// After a failed handshake: sends the same upgrade request again over a plain TCP connection
        /// and reads the daemon's answer, its HTTP status and the one-line reason in its body, which
        /// ClientWebSocket does not hand over (Mono reports neither, only "Unable to connect to the
        /// remote server"). ws:// only, at most ProbeTimeoutMs; false when it cannot tell. A refusal
        /// is counted twice in `attune status`.
        /// </summary>
        static bool AskWhyRefused(Uri url, string token, out int status, out string reason)
        {
            status = 0;
            reason = null;
            if (url.Scheme != "ws")
                return false;
            try
            {
                using (var tcp = new TcpClient(url.HostNameType == UriHostNameType.IPv6
                                               ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork))
                {
                    if (!tcp.ConnectAsync(url.DnsSafeHost, url.Port).Wait(ProbeTimeoutMs))
                        return false;
                    tcp.ReceiveTimeout = ProbeTimeoutMs;
                    tcp.SendTimeout = ProbeTimeoutMs;
                    NetworkStream stream = tcp.GetStream();
                    var request = new StringBuilder();
                    request.Append("GET ").Append(url.PathAndQuery).Append(" HTTP/1.1\r\n");
                    request.Append("Host: ").Append(url.Host).Append(':').Append(url.Port).Append("\r\n");
                    request.Append("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n");
                    request.Append("Sec-WebSocket-Key: ").Append(Convert.ToBase64String(Guid.NewGuid().ToByteArray())).Append("\r\n");
                    if (!string.IsNullOrEmpty(token))
                        request.Append("Authorization: Bearer ").Append(token).Append("\r\n");
                    request.Append("\r\n");
                    byte[] bytes = Encoding.ASCII.GetBytes(request.ToString());
                    stream.Write(bytes, 0, bytes.Length);

                    // The daemon closes the connection after a refusal; read until then (at most 8 KiB).
                    var answer = new byte[8192];
                    int length = 0, n;
                    try
                    {
                        while (length < answer.Length && (n = stream.Read(answer, length, answer.Length - length)) > 0)
                            length += n;
                    }
                    catch (System.IO.IOException)
                    {
                        // timed out or reset: use what arrived
                    }
                    string text = Encoding.UTF8.GetString(answer, 0, length);
                    int headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                    string[] statusLine = text.Substring(0, Math.Max(0, text.IndexOf("\r\n", StringComparison.Ordinal))).Split(' ');
                    if (!text.StartsWith("HTTP/1.", StringComparison.Ordinal) || statusLine.Length < 2
                        || !int.TryParse(statusLine[1], out status))
                        return false;
                    if (headEnd >= 0)
                    {
                        foreach (string line in text.Substring(headEnd + 4).Split('\n'))
                        {
                            reason = Printable(line);
                            if (reason.Length > 0) break;
                        }
                        if (reason != null && reason.Length == 0) reason = null;
                    }
                    return true;
                }
            }
            catch (Exception)
            {
                return false;  // only a diagnosis: the handshake's own exception still says what failed
            }
        }

        const int ProbeTimeoutMs = 2000;

        // One line of what a server sent, safe for a terminal: no control characters, at most 200.
        static string Printable(string line)
        {
            var text = new StringBuilder();
            foreach (char c in line.Trim())
            {
                if (text.Length == 200) break;
                text.Append(char.IsControl(c) ? ' ' : c);
            }
            return text.ToString();
        }

        /// <summary>Refuses a socket directory that is a symlink or (on .NET 7+) open to others.</summary>
        static void CheckSocketDirectory(string socketPath)
        {
            string dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(socketPath));
            var info = new System.IO.DirectoryInfo(dir);
            // Nothing at the path: nothing to refuse, and Connect() reports it. (File.Exists is true
            // for a socket: on Unix it means "exists and is not a directory".)
            if (!info.Exists || !System.IO.File.Exists(socketPath))
                return;
            if ((info.Attributes & System.IO.FileAttributes.ReparsePoint) != 0)
                throw new UntrustedSocketException("refusing socket directory " + dir
                    + ": it is a symbolic link; it must be a real directory owned by you with mode 0700");
#if NET7_0_OR_GREATER
            var mode = System.IO.File.GetUnixFileMode(dir);
            const System.IO.UnixFileMode others = System.IO.UnixFileMode.GroupRead | System.IO.UnixFileMode.GroupWrite
                | System.IO.UnixFileMode.GroupExecute | System.IO.UnixFileMode.OtherRead
                | System.IO.UnixFileMode.OtherWrite | System.IO.UnixFileMode.OtherExecute;
            if ((mode & others) != 0)
                throw new UntrustedSocketException("refusing socket directory " + dir + ": mode "
                    + Convert.ToString((int)mode, 8).PadLeft(4, '0')
                    + "; it must be a directory owned by you with mode 0700 (another user may be listening there)");
#endif
        }

        /// <summary>Refuses a daemon that runs as another user (SO_PEERCRED: pid, uid, gid).</summary>
        static void CheckPeer(Socket s, string socketPath, bool allowUnverifiedPeer)
        {
            uint peer;
            try
            {
                peer = PeerUid(s);
            }
            catch (Exception e) when (e is PlatformNotSupportedException || e is MissingMethodException
                                      || e is NotSupportedException)
            {
                if (allowUnverifiedPeer) return;
                throw new UntrustedSocketException("cannot check which user the daemon at " + socketPath
                    + " runs as on this runtime (no Socket.GetRawSocketOption); refusing");
            }
            uint us = EffectiveUid();
            if (peer != us)
                throw new UntrustedSocketException("refusing the daemon at " + socketPath + ": it runs as uid "
                    + peer + ", not as uid " + us + "; nothing was sent to it");
        }

        // A separate method so that a missing GetRawSocketOption fails inside CheckPeer's try.
        static uint PeerUid(Socket s)
        {
            const int SolSocket = 1, SoPeercred = 17; // Linux values
            var cred = new byte[12];                  // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
            int n = s.GetRawSocketOption(SolSocket, SoPeercred, cred);
            if (n < 8) throw new UntrustedSocketException("SO_PEERCRED returned " + n + " bytes");
            return BitConverter.ToUInt32(cred, 4);
        }

        static EndPoint CreateEndPoint(string path)
        {
#if ATTUNE_CUSTOM_ENDPOINT
            return new UnixSocketEndPoint(path);
#else
            try
            {
                return CreateStandardEndPoint(path);
            }
            catch (Exception e) when (e is PlatformNotSupportedException || e is TypeLoadException
                                      || e is MissingMethodException)
            {
                return new UnixSocketEndPoint(path);
            }
#endif
        }

        // A separate method so that a missing type fails when this is called, inside the try above.
        static EndPoint CreateStandardEndPoint(string path)
        {
            return new UnixDomainSocketEndPoint(path);
        }

        /// <summary>Sends hello; optional (the daemon sends welcome anyway) but recommended.</summary>
        public void Hello(string clientName)
        {
            var message = new Dictionary<string, object>
            {
                { "type", "hello" }, { "protocol", Protocol }, { "client", clientName },
            };
            SendLine(JsonSerializer.Serialize(message));
        }

        /// <summary>Subscribes; participant "*" or null = all, topics null = all three.
        /// A later call replaces the earlier subscription.</summary>
        public void Subscribe(string participant, string[] topics)
        {
            var message = new Dictionary<string, object> { { "type", "subscribe" } };
            if (participant != null) message["participant"] = participant;
            if (topics != null)
            {
                foreach (string topic in topics)
                {
                    if (Array.IndexOf(KnownTopics, topic) < 0)
                        throw new ArgumentException("unknown topic " + topic + "; use adaptation, state, features");
                }
                message["topics"] = topics;
            }
            SendLine(JsonSerializer.Serialize(message));
        }

        void SendLine(string json)
        {
            if (webSocket != null)
            {
                // One text message per line, without the newline. Throws WebSocketException when
                // the connection is gone.
                byte[] text = Encoding.UTF8.GetBytes(json);
                webSocket.SendAsync(new ArraySegment<byte>(text), WebSocketMessageType.Text, true,
                                    CancellationToken.None).GetAwaiter().GetResult();
                return;
            }
            byte[] bytes = Encoding.UTF8.GetBytes(json + "\n");
            int sent = 0;
            while (sent < bytes.Length)
                sent += socket.Send(bytes, sent, bytes.Length - sent, SocketFlags.None);
        }

        /// <summary>Blocks until one complete line arrives; returns it without the newline, or null
        /// when the daemon closed the connection. A Receive() can return part of a line, several
        /// lines, or cut a UTF-8 character in two, so bytes are buffered until a newline. Over
        /// WebSocket each message is one line, and it goes through the same buffer.</summary>
        public string ReadLine()
        {
            while (true)
            {
                int newline = Array.IndexOf(pending, (byte)'\n', 0, pendingLength);
                if (newline >= 0)
                {
                    string line = Encoding.UTF8.GetString(pending, 0, newline);
                    int rest = pendingLength - newline - 1;
                    Buffer.BlockCopy(pending, newline + 1, pending, 0, rest);
                    pendingLength = rest;
                    return line;
                }
                bool open = webSocket != null ? ReceiveMessage() : ReceiveBytes();
                if (!open)
                {
                    if (pendingLength > 0)
                        Console.Error.WriteLine("attune: connection closed inside a line; dropped " + pendingLength + " bytes");
                    pendingLength = 0;
                    return null;
                }
            }
        }

        // Socket: appends what one Receive() returns to pending; false at the end of the connection.
        bool ReceiveBytes()
        {
            int n;
            try
            {
                n = socket.Receive(receiveBuffer);
            }
            catch (SocketException)
            {
                n = 0;  // reset by the daemon, or closed by Dispose() on another thread
            }
            catch (ObjectDisposedException)
            {
                n = 0;
            }
            if (n == 0)
                return false;
            Append(receiveBuffer, n);
            return true;
        }

        // WebSocket: appends one whole message and a newline to pending; false at the end of the
        // connection. A message can come in several frames (EndOfMessage marks the last one), and a
        // frame can be larger than receiveBuffer, so the parts are appended until the end; ReadLine()
        // then decodes the whole line at once, as on the socket. The daemon sends text messages; a
        // binary one is read the same way (the daemon does so with ours).
        bool ReceiveMessage()
        {
            int start = pendingLength;
            while (true)
            {
                WebSocketReceiveResult result;
                try
                {
                    result = webSocket.ReceiveAsync(new ArraySegment<byte>(receiveBuffer), CancellationToken.None)
                        .GetAwaiter().GetResult();
                }
                catch (WebSocketException)
                {
                    return false;  // the connection broke without a close handshake
                }
                catch (ObjectDisposedException)
                {
                    return false;  // closed by Dispose() on another thread
                }
                catch (OperationCanceledException)
                {
                    return false;  // aborted by Dispose() on another thread
                }
                catch (System.IO.IOException)
                {
                    return false;  // reset by the daemon (some runtimes do not wrap it)
                }
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    CloseWebSocket();  // answer the daemon's close frame
                    return false;
                }
                Append(receiveBuffer, result.Count);
                if (result.EndOfMessage)
                    break;
            }
            if (pendingLength == start || pending[pendingLength - 1] != (byte)'\n')
                Append(Newline, 1);
            return true;
        }

        static readonly byte[] Newline = { (byte)'\n' };

        void Append(byte[] bytes, int n)
        {
            if (pendingLength + n > pending.Length)
                Array.Resize(ref pending, Math.Max(pending.Length * 2, pendingLength + n));
            Buffer.BlockCopy(bytes, 0, pending, pendingLength, n);
            pendingLength += n;
        }

        /// <summary>JSON: the message's "type", or null when the line is not a JSON object with a
        /// string type. Unknown types are returned as they are; callers ignore what they don't know.</summary>
        public static string MessageType(string line)
        {
            try
            {
                using (JsonDocument doc = JsonDocument.Parse(line))
                {
                    JsonElement root = doc.RootElement;
                    JsonElement type;
                    if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("type", out type)
                        && type.ValueKind == JsonValueKind.String)
                        return type.GetString();
                    return null;
                }
            }
            catch (JsonException)
            {
                return null;
            }
        }

        /// <summary>JSON: reads an adaptation line. Unknown fields are ignored.</summary>
        public static Adaptation ParseAdaptation(string line)
        {
            using (JsonDocument doc = JsonDocument.Parse(line))
            {
                JsonElement root = doc.RootElement;
                var a = new Adaptation { RawJson = line };
                a.Participant = GetString(root, "participant");
                a.T = GetNumber(root, "t") ?? double.NaN;
                a.Action = GetString(root, "action");
                a.Arousal = GetNumber(root, "arousal");
                a.Confidence = GetNumber(root, "confidence") ?? 0.0;
                a.ArousalState = GetString(root, "arousal_state");
                JsonElement reason;
                if (root.TryGetProperty("reason", out reason) && reason.ValueKind == JsonValueKind.Object)
                {
                    a.Rule = GetString(reason, "rule");
                    a.Summary = GetString(reason, "summary");
                }
                return a;
            }
        }

        /// <summary>JSON: the "code" of an error line, or null.</summary>
        public static string ErrorCode(string line)
        {
            using (JsonDocument doc = JsonDocument.Parse(line))
                return GetString(doc.RootElement, "code");
        }

        // Sends our close frame (the closing handshake) if the connection is still up; waits at
        // most CloseTimeoutMs. Best effort: the connection may be gone or disposed already.
        void CloseWebSocket()
        {
            try
            {
                WebSocketState state = webSocket.State;
                if (state != WebSocketState.Open && state != WebSocketState.CloseReceived)
                    return;
                using (var timeout = new CancellationTokenSource(CloseTimeoutMs))
                    webSocket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", timeout.Token)
                        .GetAwaiter().GetResult();
            }
            catch (Exception)
            {
                // gone already (WebSocketException, ObjectDisposedException, a timeout): nothing to close
            }
        }

        static string GetString(JsonElement obj, string name)
        {
            JsonElement v;
            return obj.TryGetProperty(name, out v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        }

        static double? GetNumber(JsonElement obj, string name)
        {
            JsonElement v;
            if (obj.TryGetProperty(name, out v) && v.ValueKind == JsonValueKind.Number)
                return v.GetDouble();
            return null;  // missing or null
        }

        /// <summary>Closes the connection; a ReadLine() blocked on another thread returns null.</summary>
        public void Dispose()
        {
            if (webSocket != null)
            {
                CloseWebSocket();
                webSocket.Dispose();  // aborts a ReceiveAsync still waiting on another thread
                return;
            }
            try
            {
                socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
                // not connected any more
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            socket.Dispose();
        }
    }

    /// <summary>The socket's directory or the daemon's uid failed a trust check; nothing was sent.</summary>
    public sealed class UntrustedSocketException : Exception
    {
        public UntrustedSocketException(string message) : base(message) { }
    }

    /// <summary>The daemon answered the WebSocket handshake with an HTTP status instead of 101:
    /// 401 for a wrong or missing token, 403 for a Host or Origin it does not allow. Nothing was sent.</summary>
    public sealed class WebSocketRefusedException : Exception
    {
        public readonly int StatusCode;
        public readonly string Reason;   // the daemon's one-line reason, or null when not known

        public WebSocketRefusedException(int statusCode, string reason, string url)
            : base("the daemon at " + url + " refused the WebSocket handshake with HTTP " + statusCode
                   + ": " + (reason ?? Meaning(statusCode)))
        {
            StatusCode = statusCode;
            Reason = reason;
        }

        static string Meaning(int statusCode)
        {
            if (statusCode == 401)
                return "a wrong or missing token (`attune token` shows it)";
            if (statusCode == 403)
                return "the Host or Origin is not allowed (connect to 127.0.0.1 or localhost, or list the name in"
                       + " [ws] allowed_hosts, a web page's origin in allowed_origins)";
            return "not what attune answers (is this the address `attune run --ws` listens on?)";
        }
    }

    /// <summary>A sockaddr_un endpoint for runtimes without a working UnixDomainSocketEndPoint.</summary>
    public sealed class UnixSocketEndPoint : EndPoint
    {
        readonly string path;

        public UnixSocketEndPoint(string path)
        {
            // sun_path is 108 bytes on Linux, including the terminating NUL.
            if (string.IsNullOrEmpty(path) || Encoding.UTF8.GetByteCount(path) > 107)
                throw new ArgumentException("socket path is empty or longer than 107 bytes: " + path);
            this.path = path;
        }

        public override AddressFamily AddressFamily { get { return AddressFamily.Unix; } }

        public override SocketAddress Serialize()
        {
            byte[] bytes = Encoding.UTF8.GetBytes(path);
            var address = new SocketAddress(AddressFamily.Unix, 2 + bytes.Length + 1);
            for (int i = 0; i < bytes.Length; i++)
                address[2 + i] = bytes[i];
            address[2 + bytes.Length] = 0;
            return address;
        }

        public override EndPoint Create(SocketAddress socketAddress)
        {
            return new UnixSocketEndPoint(path);
        }

        public override string ToString() { return path; }
    }

#if !UNITY_5_3_OR_NEWER
    public static class Program
    {
        const string Usage = "usage: AttuneClient [--socket PATH | --ws ws://HOST:PORT/[?token=TOKEN] [--token-file PATH]] "
                             + "[--participant ID|*] [--topics adaptation,state,features] [--count N]";

        public static int Main(string[] args)
        {
            string socketPath = null, participant = "*", tokenFile = null;
            Uri webSocketUrl = null;
            string[] topics = null;
            int count = 0;
            for (int i = 0; i < args.Length; i += 2)
            {
                string value = i + 1 < args.Length ? args[i + 1] : null;
                bool ok = value != null;
                if (ok && args[i] == "--socket") socketPath = value;
                else if (ok && args[i] == "--ws") ok = IsWebSocketUrl(value, out webSocketUrl);
                else if (ok && args[i] == "--token-file") tokenFile = value;
                else if (ok && args[i] == "--participant") participant = value;
                else if (ok && args[i] == "--topics") topics = value.Split(new[] { ',' }, StringSplitOptions.RemoveEmptyEntries);
                else if (ok && args[i] == "--count") ok = int.TryParse(value, out count) && count >= 0;
                else ok = false;
                if (!ok)
                {
                    Console.Error.WriteLine(Usage);
                    return 2;
                }
            }
            // --socket and --ws are two ways to reach the daemon; --token-file belongs to --ws.
            if ((socketPath != null && webSocketUrl != null) || (tokenFile != null && webSocketUrl == null))
            {
                Console.Error.WriteLine(Usage);
                return 2;
            }

            AttuneClient client;
            if (webSocketUrl != null)
            {
                client = ConnectWebSocket(webSocketUrl, tokenFile);
                if (client == null) return 1;
            }
            else
            {
                if (socketPath == null) socketPath = AttuneClient.DefaultSocketPath();
                try
                {
                    client = new AttuneClient(socketPath);
                }
                catch (SocketException e)
                {
                    Console.Error.WriteLine("attune: cannot connect to " + socketPath + ": " + e.Message
                                            + " (is `attune run` or `attune replay` running?)");
                    return 1;
                }
                catch (UntrustedSocketException e)
                {
                    Console.Error.WriteLine("attune: " + e.Message);
                    return 1;
                }
            }

            using (client)
            {
                try
                {
                    // welcome arrives on its own; hello and subscribe can be sent right away.
                    client.Hello("AttuneClient.cs");
                    client.Subscribe(participant, topics);
                }
                catch (SocketException)
                {
                    // The daemon hung up already; ReadLine() below sees the end.
                }
                catch (WebSocketException)
                {
                    // The same over WebSocket.
                }
                catch (ArgumentException e)
                {
                    Console.Error.WriteLine("attune: " + e.Message);
                    return 2;
                }

                bool welcomed = false;
                string fatal = null;
                int seen = 0;
                string line;
                while ((line = client.ReadLine()) != null)
                {
                    string type = AttuneClient.MessageType(line);
                    if (type == null)
                    {
                        if (line.Trim().Length > 0) Console.Error.WriteLine("attune: skipping a line that is not a JSON message");
                        continue;
                    }
                    if (type == "welcome") welcomed = true;
                    if (type == "error")
                    {
                        string code = AttuneClient.ErrorCode(line);
                        if (code == "unsupported_protocol" || code == "line_too_long"
                            || code == "idle_timeout" || code == "too_many_clients") fatal = code;
                    }
                    if (type == "adaptation")
                    {
                        Adaptation a = AttuneClient.ParseAdaptation(line);
                        Console.WriteLine(string.Format(System.Globalization.CultureInfo.InvariantCulture,
                            "{0,-8} t={1,9:F2}  {2,-8} arousal={3} ({4,-7}) confidence={5:F2} rule={6}",
                            a.Participant, a.T, a.Action,
                            a.Arousal.HasValue ? a.Arousal.Value.ToString("F2", System.Globalization.CultureInfo.InvariantCulture) : "  -- ",
                            a.ArousalState, a.Confidence, a.Rule));
                        seen++;
                        if (count > 0 && seen >= count) return 0;
                    }
                    else
                    {
                        Console.WriteLine(line);  // every other message, known or not, as raw JSON
                    }
                }
                if (!welcomed)
                {
                    Console.Error.WriteLine("attune: the daemon closed the connection without a welcome (is this uid allowed to connect?)");
                    return 1;
                }
                if (fatal != null)
                {
                    Console.Error.WriteLine("attune: the daemon closed the connection after error " + fatal);
                    return 1;
                }
                return 0;
            }
        }

        static bool IsWebSocketUrl(string value, out Uri url)
        {
            return Uri.TryCreate(value, UriKind.Absolute, out url) && (url.Scheme == "ws" || url.Scheme == "wss");
        }

        /// <summary>The WebSocket connection, or null after one line on stderr saying why not.</summary>
        static AttuneClient ConnectWebSocket(Uri url, string tokenFile)
        {
            string where = url.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);   // no ?token=
            string token = null;
            if (tokenFile != null)
            {
                try
                {
                    token = AttuneClient.ReadTokenFile(tokenFile);
                }
                catch (Exception e) when (e is System.IO.IOException || e is UnauthorizedAccessException
                                          || e is System.IO.InvalidDataException)
                {
                    Console.Error.WriteLine("attune: cannot read the token file " + tokenFile + ": " + OneLine(e)
                                            + " (`attune token` prints where it is)");
                    return null;
                }
            }
            try
            {
                return new AttuneClient(url, token);
            }
            catch (WebSocketRefusedException e)
            {
                string hint = e.StatusCode == 401 && token == null && url.Query.IndexOf("token=", StringComparison.Ordinal) < 0
                    ? "; pass ?token=TOKEN or --token-file " + AttuneClient.DefaultTokenPath()
                    : "";
                Console.Error.WriteLine("attune: " + e.Message + hint);
                return null;
            }
            catch (Exception e) when (e is WebSocketException || e is TimeoutException || e is SocketException
                                      || e is WebException || e is System.IO.IOException
                                      || e is PlatformNotSupportedException)
            {
                Console.Error.WriteLine("attune: cannot connect to " + where + ": " + OneLine(e)
                                        + " (is `attune run --ws` running?)");
                return null;
            }
        }

        // An exception and its causes as one line ("Unable to connect: Connection refused").
        static string OneLine(Exception e)
        {
            var text = new StringBuilder();
            for (Exception x = e; x != null; x = x.InnerException)
            {
                string m = x.Message.Replace('\r', ' ').Replace('\n', ' ').Trim().TrimEnd('.');
                if (m.Length == 0 || text.ToString().IndexOf(m, StringComparison.Ordinal) >= 0) continue;
                if (text.Length > 0) text.Append(": ");
                text.Append(m);
            }
            return text.ToString();
        }
    }
#endif
}

/* Unity sketch (not compiled): read on a background thread, apply decisions on the main thread.

using System.Collections.Concurrent;
using System.Threading;
using UnityEngine;
using Attune.Client;

public class AttuneListener : MonoBehaviour
{
    public string participant = "p01";
    readonly ConcurrentQueue<Adaptation> inbox = new ConcurrentQueue<Adaptation>();
    AttuneClient client;
    Thread reader;

    void Start()
    {
        client = new AttuneClient(AttuneClient.DefaultSocketPath());   // throws if no daemon
        client.Hello(Application.productName);
        client.Subscribe(participant, new[] { "adaptation", "state" });
        reader = new Thread(() =>
        {
            string line;
            while ((line = client.ReadLine()) != null)                  // null: daemon closed
                if (AttuneClient.MessageType(line) == "adaptation")
                    inbox.Enqueue(AttuneClient.ParseAdaptation(line));
        }) { IsBackground = true };
        reader.Start();
    }

    void Update()
    {
        Adaptation a;
        while (inbox.TryDequeue(out a))                                 // four per second per participant
        {
            // e.g. a.Action == "ease_off" -> lower the exercise intensity; unknown action -> hold
        }
    }

    void OnDestroy() { if (client != null) client.Dispose(); }          // unblocks the reader thread
}

Over WebSocket (`attune run --ws`; also from a Windows or macOS editor, Android or iOS, not WebGL),
only Start() changes: the handshake blocks, so connect on the reader thread too. The token is the
daemon's <data-dir>/ws-token; read it at run time (a setting, a file), never build it into the app.

    public string url = "ws://127.0.0.1:8765/";
    public string token;                                                // from your settings

    void Start()
    {
        reader = new Thread(() =>
        {
            try
            {
                client = new AttuneClient(new System.Uri(url), token);
            }
            catch (System.Exception e)                                  // WebSocketRefusedException: 401 token, 403 Host/Origin
            {
                Debug.LogWarning("attune: " + e.Message);
                return;
            }
            client.Hello(Application.productName);
            client.Subscribe(participant, new[] { "adaptation", "state" });
            string line;
            while ((line = client.ReadLine()) != null)
                if (AttuneClient.MessageType(line) == "adaptation")
                    inbox.Enqueue(AttuneClient.ParseAdaptation(line));
        }) { IsBackground = true };
        reader.Start();
    }
*/
