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
// Options: --socket PATH, --participant ID (default "*"), --topics a,b,c, --count N.
// Exit codes: 0 after --count adaptation messages or when the daemon closes normally; 1 when the
// socket cannot be reached or fails the trust checks, the daemon closes before its welcome (uid not
// allowed), or after a fatal error (unsupported_protocol, line_too_long, idle_timeout,
// too_many_clients).
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
// These checks were added without a .NET SDK at hand and have not been compiled.
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
//   Windows or macOS editor, Android, iOS and WebGL cannot reach a Linux Unix socket.
// - Never read the socket on Unity's main thread: Receive() blocks. Read on a background thread and
//   hand messages to Update() through a ConcurrentQueue, as in the example at the end.

using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

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

    /// <summary>A blocking line-oriented client for the attune socket. One reader thread only.</summary>
    public sealed class AttuneClient : IDisposable
    {
        public const int Protocol = 1;
        static readonly string[] KnownTopics = { "adaptation", "state", "features" };

        readonly Socket socket;
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
            byte[] bytes = Encoding.UTF8.GetBytes(json + "\n");
            int sent = 0;
            while (sent < bytes.Length)
                sent += socket.Send(bytes, sent, bytes.Length - sent, SocketFlags.None);
        }

        /// <summary>Blocks until one complete line arrives; returns it without the newline, or null
        /// when the daemon closed the connection. A Receive() can return part of a line, several
        /// lines, or cut a UTF-8 character in two, so bytes are buffered until a newline.</summary>
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
                {
                    if (pendingLength > 0)
                        Console.Error.WriteLine("attune: connection closed inside a line; dropped " + pendingLength + " bytes");
                    pendingLength = 0;
                    return null;
                }
                if (pendingLength + n > pending.Length)
                    Array.Resize(ref pending, Math.Max(pending.Length * 2, pendingLength + n));
                Buffer.BlockCopy(receiveBuffer, 0, pending, pendingLength, n);
                pendingLength += n;
            }
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
        public static int Main(string[] args)
        {
            string socketPath = null, participant = "*";
            string[] topics = null;
            int count = 0;
            for (int i = 0; i < args.Length; i += 2)
            {
                string value = i + 1 < args.Length ? args[i + 1] : null;
                bool ok = value != null;
                if (ok && args[i] == "--socket") socketPath = value;
                else if (ok && args[i] == "--participant") participant = value;
                else if (ok && args[i] == "--topics") topics = value.Split(new[] { ',' }, StringSplitOptions.RemoveEmptyEntries);
                else if (ok && args[i] == "--count") ok = int.TryParse(value, out count) && count >= 0;
                else ok = false;
                if (!ok)
                {
                    Console.Error.WriteLine("usage: AttuneClient [--socket PATH] [--participant ID|*] "
                                            + "[--topics adaptation,state,features] [--count N]");
                    return 2;
                }
            }
            if (socketPath == null) socketPath = AttuneClient.DefaultSocketPath();

            AttuneClient client;
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
*/
