# Two commands do all set-up on a fresh Debian machine:
#   make run   -> installs what is missing, then runs `k8py server`
#   make test  -> installs the same plus test needs, then runs the suite
PYTHON ?= python3
VENV   := .venv
APT_RUN  := python3-venv runc containernetworking-plugins nftables iptables iproute2 zstd busybox-static
APT_TEST := $(APT_RUN) etcd-server docker-registry
ARGS ?=

.PHONY: run test deps test-deps clean

# The busybox and httpd images (built from busybox-static) are imported first so the
# examples run off-line; a second `make run` finds them and goes straight on.
run: deps
	@$(VENV)/bin/k8py images build-busybox $(VENV)/busybox-oci.tar --import --if-missing $(filter --data-dir=%,$(ARGS)) \
	  || echo "make run: the busybox/httpd images were not imported (see above)" >&2
	$(VENV)/bin/k8py server $(ARGS)

test: test-deps
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider $(ARGS)

deps: $(VENV)/.stamp-deps

test-deps: deps
	@scripts/apt-ensure.sh $(APT_TEST)

$(VENV)/.stamp-deps: requirements.lock pyproject.toml
	@scripts/apt-ensure.sh $(APT_RUN)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

clean:
	rm -rf $(VENV)
