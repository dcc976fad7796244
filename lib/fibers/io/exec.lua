-- fibers.io.exec - the same module as fibers.exec (doc/library.md §0.1).
return require 'fibers.exec'
