-- Built-in task `validate` (SPEC §4): the component's files exist, its main
-- file exists, nothing lies outside its rootDir, no symlink escapes. The
-- workspace scan already found these; a component with issues fails here.
return {
  cache = false, -- cheap, and its inputs include issues the file list does not show
  run = function(component, ctx)
    if #component.issues > 0 then
      require("bbit.errors").fail(("%s: validate: %s"):format(component.id, table.concat(component.issues, "; ")),
        "fix the files, or run `bbit status` to see every issue")
    end
    ctx.log(("%d files, main file %s"):format(#component.files, component.entry.mainFile))
  end,
}
