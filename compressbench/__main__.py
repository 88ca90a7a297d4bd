from compressbench.cli import main

main()
