import Foundation

// What a printed or logged configuration shows: never a secret. `String(describing:)` of a
// value without a description walks its fields, and a framework that logs the services it
// starts (ServiceLifecycle at debug) would print every token in deferred.toml's environment.
// Each type that holds one shows what identifies it instead.

extension ServerConfig: CustomReflectable {
    public var customMirror: Mirror {
        Mirror(self, children: ["listen": "\(listenHost):\(listenPort)", "publicURL": publicURL,
                                "adminToken": adminToken == nil ? "unset" : "<secret>"], displayStyle: .struct)
    }
}

extension GitHubConfig: CustomReflectable {
    public var customMirror: Mirror {
        Mirror(self, children: ["apiURL": apiURL, "secret": "<secret>", "token": token == nil ? "unset" : "<secret>"], displayStyle: .struct)
    }
}

extension ProjectConfig: CustomReflectable {
    public var customMirror: Mirror {
        Mirror(self, children: ["name": name, "repository": repository, "hosts": hosts], displayStyle: .struct)
    }
}

extension PostgresSettings: CustomReflectable {
    public var customMirror: Mirror {
        Mirror(self, children: ["host": host, "port": port, "database": database, "user": user,
                                "password": password == nil ? "unset" : "<secret>"], displayStyle: .struct)
    }
}
