package kafkacluster

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// pom names the broker's jars (Apache Kafka and log4j2 from Maven Central).
//
//go:embed pom.xml
var pom []byte

// KafkaVersion is the Apache Kafka release the pom pins.
const KafkaVersion = "4.3.1"

// CacheDir is where resolved jars are kept: KAFKACLUSTER_CACHE, else
// $XDG_CACHE_HOME/es-outbox, else ~/.cache/es-outbox.
func CacheDir() string {
	if d := os.Getenv("KAFKACLUSTER_CACHE"); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "es-outbox")
}

// Classpath returns the broker's classpath ("DIR/*"), resolving the jars
// with Maven the first time (about a minute, 55 MB) and from the cache
// after that.
func Classpath(ctx context.Context, log io.Writer) (string, error) {
	return ResolveJars(ctx, log, "kafka-"+KafkaVersion, pom)
}

// ResolveJars returns the classpath ("DIR/*") of the jars a pom names and
// their dependencies, resolved from Maven Central with Maven
// (dependency:copy-dependencies) into CacheDir()/NAME-HASH the first time
// and taken from there after that. HASH is of the pom's content, so a new
// pin resolves anew. name says what the jars are, in the cache and in the
// progress line log receives.
func ResolveJars(ctx context.Context, log io.Writer, name string, pom []byte) (string, error) {
	sum := sha256.Sum256(pom)
	dir := filepath.Join(CacheDir(), name+"-"+hex.EncodeToString(sum[:4]))
	libs := filepath.Join(dir, "libs")
	done := filepath.Join(dir, "resolved")
	if _, err := os.Stat(done); err == nil {
		return libs + "/*", nil
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return "", fmt.Errorf("kafkacluster: Maven (mvn) is not installed; it fetches %s from Maven Central (Debian: apt-get install maven)", name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "pom.xml"), pom, 0o644); err != nil {
		return "", err
	}
	_ = os.RemoveAll(libs)
	fmt.Fprintf(log, "kafkacluster: resolving %s from Maven Central into %s (once)\n", name, dir)
	cmd := exec.CommandContext(ctx, mvn, "-q", "-B", "-f", filepath.Join(dir, "pom.xml"),
		"dependency:copy-dependencies", "-DoutputDirectory="+libs)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kafkacluster: mvn dependency:copy-dependencies for %s: %v: %s", name, err, lastLines(string(out), 5))
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		return "", err
	}
	return libs + "/*", nil
}

// Java finds the java command: JAVA_HOME's, else the one on PATH.
func Java() (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		if java := filepath.Join(home, "bin", "java"); isExecutable(java) {
			return java, nil
		}
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return "", errors.New("kafkacluster: Java is not installed; the Kafka broker and Kafka Connect need Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless)")
	}
	return java, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&0o111 != 0
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
