## completion/completion.mk - bash completion for fibersctl, installed as
## `fibersctl` for bash-completion's on-demand loading (bashcompletiondir
## comes from configure: pkg-config bash-completion's completionsdir, else
## $(datadir)/bash-completion/completions).
EXTRA_DIST += completion/fibersctl.bash
install-data-local: install-fibersctl-completion
install-fibersctl-completion:
	$(MKDIR_P) $(DESTDIR)$(bashcompletiondir)
	$(INSTALL_DATA) $(srcdir)/completion/fibersctl.bash $(DESTDIR)$(bashcompletiondir)/fibersctl
UNINSTALL_HOOKS += uninstall-fibersctl-completion
uninstall-fibersctl-completion:
	rm -f $(DESTDIR)$(bashcompletiondir)/fibersctl
.PHONY: install-fibersctl-completion uninstall-fibersctl-completion
