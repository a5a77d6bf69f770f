//! HELP texts, as Redis 7.0.15 prints them (one status line per line).

pub const CLIENT: &str = r#"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
CACHING (YES|NO)
    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.
GETREDIR
    Return the client ID we are redirecting to when tracking is enabled.
GETNAME
    Return the name of the current connection.
ID
    Return the ID of the current connection.
INFO
    Return information about the current client connection.
KILL <ip:port>
    Kill connection made from <ip:port>.
KILL <option> <value> [<option> <value> [...]]
    Kill connections. Options are:
    * ADDR (<ip:port>|<unixsocket>:0)
      Kill connections made from the specified address
    * LADDR (<ip:port>|<unixsocket>:0)
      Kill connections made to specified local address
    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)
      Kill connections by type.
    * USER <username>
      Kill connections authenticated by <username>.
    * SKIPME (YES|NO)
      Skip killing current connection (default: yes).
LIST [options ...]
    Return information about client connections. Options:
    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)
      Return clients of specified type.
UNPAUSE
    Stop the current client pause, resuming traffic.
PAUSE <timeout> [WRITE|ALL]
    Suspend all, or just write, clients for <timeout> milliseconds.
REPLY (ON|OFF|SKIP)
    Control the replies sent to the current connection.
SETNAME <name>
    Assign the name <name> to the current connection.
UNBLOCK <clientid> [TIMEOUT|ERROR]
    Unblock the specified blocked client.
TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]
         [OPTIN] [OPTOUT] [NOLOOP]
    Control server assisted client side caching.
TRACKINGINFO
    Report tracking status for the current connection.
NO-EVICT (ON|OFF)
    Protect current client connection from eviction.
HELP
    Prints this help."#;

pub const COMMAND: &str = r#"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
(no subcommand)
    Return details about all Redis commands.
COUNT
    Return the total number of commands in this Redis server.
LIST
    Return a list of all commands in this Redis server.
INFO [<command-name> ...]
    Return details about multiple Redis commands.
    If no command names are given, documentation details for all
    commands are returned.
DOCS [<command-name> ...]
    Return documentation details about multiple Redis commands.
    If no command names are given, documentation details for all
    commands are returned.
GETKEYS <full-command>
    Return the keys from a full Redis command.
GETKEYSANDFLAGS <full-command>
    Return the keys and the access flags from a full Redis command.
HELP
    Prints this help."#;

pub const CONFIG: &str = r#"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
GET <pattern>
    Return parameters matching the glob-like <pattern> and their values.
SET <directive> <value>
    Set the configuration <directive> to <value>.
RESETSTAT
    Reset statistics reported by the INFO command.
REWRITE
    Rewrite the configuration file.
HELP
    Prints this help."#;

pub const DEBUG: &str = r#"DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
AOF-FLUSH-SLEEP <microsec>
    Server will sleep before flushing the AOF, this is used for testing.
ASSERT
    Crash by assertion failed.
CHANGE-REPL-ID
    Change the replication IDs of the instance.
    Dangerous: should be used only for testing the replication subsystem.
CONFIG-REWRITE-FORCE-ALL
    Like CONFIG REWRITE but writes all configuration options, including
    keywords not listed in original configuration file or default values.
CRASH-AND-RECOVER [<milliseconds>]
    Hard crash and restart after a <milliseconds> delay (default 0).
DIGEST
    Output a hex signature representing the current DB content.
DIGEST-VALUE <key> [<key> ...]
    Output a hex signature of the values of all the specified keys.
ERROR <string>
    Return a Redis protocol error with <string> as message. Useful for clients
    unit tests to simulate Redis errors.
LEAK <string>
    Create a memory leak of the input string.
LOG <message>
    Write <message> to the server log.
HTSTATS <dbid>
    Return hash table statistics of the specified Redis database.
HTSTATS-KEY <key>
    Like HTSTATS but for the hash table stored at <key>'s value.
LOADAOF
    Flush the AOF buffers on disk and reload the AOF in memory.
REPLICATE <string>
    Replicates the provided string to replicas, allowing data divergence.
MALLCTL <key> [<val>]
    Get or set a malloc tuning integer.
MALLCTL-STR <key> [<val>]
    Get or set a malloc tuning string.
OBJECT <key>
    Show low level info about `key` and associated value.
DROP-CLUSTER-PACKET-FILTER <packet-type>
    Drop all packets that match the filtered type. Set to -1 allow all packets.
OOM
    Crash the server simulating an out-of-memory error.
PANIC
    Crash the server simulating a panic.
POPULATE <count> [<prefix>] [<size>]
    Create <count> string keys named key:<num>. If <prefix> is specified then
    it is used instead of the 'key' prefix. These are not propagated to
    replicas. Cluster slots are not respected so keys not belonging to the
    current node can be created in cluster mode.
PROTOCOL <type>
    Reply with a test value of the specified type. <type> can be: string,
    integer, double, bignum, null, array, set, map, attrib, push, verbatim,
    true, false.
RELOAD [option ...]
    Save the RDB on disk and reload it back to memory. Valid <option> values:
    * MERGE: conflicting keys will be loaded from RDB.
    * NOFLUSH: the existing database will not be removed before load, but
      conflicting keys will generate an exception and kill the server.
    * NOSAVE: the database will be loaded from an existing RDB file.
    Examples:
    * DEBUG RELOAD: verify that the server is able to persist, flush and reload
      the database.
    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an
      existing RDB file.
    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB
      file to the database.
RESTART [<milliseconds>]
    Graceful restart: save config, db, restart after a <milliseconds> delay (default 0).
SDSLEN <key>
    Show low level SDS string info representing `key` and value.
SEGFAULT
    Crash the server with sigsegv.
SET-ACTIVE-EXPIRE <0|1>
    Setting it to 0 disables expiring keys in background when they are not
    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the
    default.
QUICKLIST-PACKED-THRESHOLD <size>
    Sets the threshold for elements to be inserted as plain vs packed nodes
    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.
SET-SKIP-CHECKSUM-VALIDATION <0|1>
    Enables or disables checksum checks for RDB files and RESTORE's payload.
SLEEP <seconds>
    Stop the server for <seconds>. Decimals allowed.
STRINGMATCH-TEST
    Run a fuzz tester against the stringmatchlen() function.
STRUCTSIZE
    Return the size of different Redis core C structures.
LISTPACK <key>
    Show low level info about the listpack encoding of <key>.
QUICKLIST <key> [<0|1>]
    Show low level info about the quicklist encoding of <key>.
    The optional argument (0 by default) sets the level of detail
CLIENT-EVICTION
    Show low level client eviction pools info (maxmemory-clients).
PAUSE-CRON <0|1>
    Stop periodic cron job processing.
REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>
    Sets the time (in milliseconds) to wait between client reply buffer peak resets.
    In case NEVER is provided the last observed peak will never be reset
    In case RESET is provided the peak reset time will be restored to the default value
REPLYBUFFER RESIZING <0|1>
    Enable or disable the reply buffer resize cron job
CLUSTERLINK KILL <to|from|all> <node-id>
    Kills the link based on the direction to/from (both) with the provided node.
HELP
    Prints this help."#;

pub const FUNCTION: &str = r#"FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
LOAD [REPLACE] <FUNCTION CODE>
    Create a new library with the given library name and code.
DELETE <LIBRARY NAME>
    Delete the given library.
LIST [LIBRARYNAME PATTERN] [WITHCODE]
    Return general information on all the libraries:
    * Library name
    * The engine used to run the Library
    * Library description
    * Functions list
    * Library code (if WITHCODE is given)
    It also possible to get only function that matches a pattern using LIBRARYNAME argument.
STATS
    Return information about the current function running:
    * Function name
    * Command used to run the function
    * Duration in MS that the function is running
    If no function is running, return nil
    In addition, returns a list of available engines.
KILL
    Kill the current running function.
FLUSH [ASYNC|SYNC]
    Delete all the libraries.
    When called without the optional mode argument, the behavior is determined by the
    lazyfree-lazy-user-flush configuration directive. Valid modes are:
    * ASYNC: Asynchronously flush the libraries.
    * SYNC: Synchronously flush the libraries.
DUMP
    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command
RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]
    Restore the libraries represented by the given payload, it is possible to give a restore policy to
    control how to handle existing libraries (default APPEND):
    * FLUSH: delete all existing libraries.
    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.
    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old
      libraries with the new libraries (notice that even on this option there is a chance of failure
      in case of functions name collision with another library).
HELP
    Prints this help."#;

pub const LATENCY: &str = r#"LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
DOCTOR
    Return a human readable latency analysis report.
GRAPH <event>
    Return an ASCII latency graph for the <event> class.
HISTORY <event>
    Return time-latency samples for the <event> class.
LATEST
    Return the latest latency samples for all events.
RESET [<event> ...]
    Reset latency data of one or more <event> classes.
    (default: reset all data for all event classes)
HISTOGRAM [COMMAND ...]
    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.
    If no commands are specified then all histograms are replied.
HELP
    Prints this help."#;

pub const MEMORY: &str = r#"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
DOCTOR
    Return memory problems reports.
MALLOC-STATS
    Return internal statistics report from the memory allocator.
PURGE
    Attempt to purge dirty pages for reclamation by the allocator.
STATS
    Return information about the memory usage of the server.
USAGE <key> [SAMPLES <count>]
    Return memory in bytes used by <key> and its value. Nested values are
    sampled up to <count> times (default: 5, 0 means sample all).
HELP
    Prints this help."#;

pub const SLOWLOG: &str = r#"SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
GET [<count>]
    Return top <count> entries from the slowlog (default: 10, -1 mean all).
    Entries are made of:
    id, timestamp, time in microseconds, arguments array, client IP and port,
    client name
LEN
    Return the length of the slowlog.
RESET
    Reset the slowlog.
HELP
    Prints this help."#;

pub const ACL: &str = r#"ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
CAT [<category>]
    List all commands that belong to <category>, or all command categories
    when no category is specified.
DELUSER <username> [<username> ...]
    Delete a list of users.
DRYRUN <username> <command> [<arg> ...]
    Returns whether the user can execute the given command without executing the command.
GETUSER <username>
    Get the user's details.
GENPASS [<bits>]
    Generate a secure 256-bit user password. The optional `bits` argument can
    be used to specify a different size.
LIST
    Show users details in config file format.
LOAD
    Reload users from the ACL file.
LOG [<count> | RESET]
    Show the ACL log entries.
SAVE
    Save the current config to the ACL file.
SETUSER <username> <attribute> [<attribute> ...]
    Create or modify a user with the specified attributes.
USERS
    List all the registered usernames.
WHOAMI
    Return the current connection username.
HELP
    Prints this help."#;

pub const SCRIPT: &str = r#"SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
DEBUG (YES|SYNC|NO)
    Set the debug mode for subsequent scripts executed.
EXISTS <sha1> [<sha1> ...]
    Return information about the existence of the scripts in the script cache.
FLUSH [ASYNC|SYNC]
    Flush the Lua scripts cache. Very dangerous on replicas.
    When called without the optional mode argument, the behavior is determined by the
    lazyfree-lazy-user-flush configuration directive. Valid modes are:
    * ASYNC: Asynchronously flush the scripts cache.
    * SYNC: Synchronously flush the scripts cache.
KILL
    Kill the currently executing Lua script.
LOAD <script>
    Load a script into the scripts cache without executing it.
HELP
    Prints this help."#;
