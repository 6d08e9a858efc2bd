from stylecli.cli import main

main()
